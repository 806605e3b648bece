package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/config"
)

// service is shaped like a service's configuration: both groups embedded, own fields next to them.
type service struct {
	config.InfluxDB
	config.Kubernetes
	Interval time.Duration `env:"INTERVAL" envDefault:"10s" desc:"scrape interval"`
	Workers  int           `env:"WORKERS" envDefault:"4" desc:"worker goroutines"`
	Nested   struct {
		Timeout time.Duration `env:"TIMEOUT" envDefault:"5s" desc:"nested timeout"`
	} `envPrefix:"NESTED_"`
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	pwFile := writeFile(t, "s3cret\n")
	emptyFile := writeFile(t, " \n")
	tests := []struct {
		name    string
		environ map[string]string
		check   func(t *testing.T, c service)
		wantErr []string // substrings that must all appear in the error
	}{
		{
			name:    "defaults",
			environ: map[string]string{},
			check: func(t *testing.T, c service) {
				want := config.InfluxDB{
					URL: "http://localhost:8086", Database: "k3s_telegraf_ds", RetentionPolicy: "autogen",
					Timeout: 30 * time.Second,
				}
				if c.InfluxDB != want {
					t.Errorf("InfluxDB = %+v, want %+v", c.InfluxDB, want)
				}
				if c.Kubeconfig != "" || c.Namespaces != nil || c.LabelSelector != "" || c.QPS != 20 || c.Burst != 40 {
					t.Errorf("Kubernetes = %+v", c.Kubernetes)
				}
				if c.Interval != 10*time.Second || c.Workers != 4 || c.Nested.Timeout != 5*time.Second {
					t.Errorf("service fields = %v %v %v", c.Interval, c.Workers, c.Nested.Timeout)
				}
				if got := c.FluxBucket(); got != "k3s_telegraf_ds/autogen" {
					t.Errorf("FluxBucket = %q", got)
				}
				if got := c.AuthToken(); got != "" {
					t.Errorf("AuthToken = %q, want empty", got)
				}
			},
		},
		{
			name: "overrides",
			environ: map[string]string{
				"INFLUXDB_URL": "https://influx.example:8086", "INFLUXDB_DATABASE": "db", "INFLUXDB_RETENTION_POLICY": "rp",
				"INFLUXDB_USERNAME": "reader", "INFLUXDB_PASSWORD": "pw:with:colons", "INFLUXDB_TIMEOUT": "1m30s",
				"KUBECONFIG": "/k/config", "NAMESPACES": " a, b ,,c", "LABEL_SELECTOR": "app in (x,y)",
				"KUBE_QPS": "2.5", "KUBE_BURST": "7", "INTERVAL": "1s", "WORKERS": "9", "NESTED_TIMEOUT": "2s",
			},
			check: func(t *testing.T, c service) {
				if c.URL != "https://influx.example:8086" || c.FluxBucket() != "db/rp" || c.Timeout != 90*time.Second {
					t.Errorf("InfluxDB = %+v", c.InfluxDB)
				}
				if got := c.AuthToken(); got != "reader:pw:with:colons" {
					t.Errorf("AuthToken = %q", got)
				}
				if !reflect.DeepEqual([]string(c.Namespaces), []string{"a", "b", "c"}) {
					t.Errorf("Namespaces = %q", []string(c.Namespaces))
				}
				if c.Kubeconfig != "/k/config" || c.QPS != 2.5 || c.Burst != 7 || c.LabelSelector != "app in (x,y)" {
					t.Errorf("Kubernetes = %+v", c.Kubernetes)
				}
				if c.Interval != time.Second || c.Workers != 9 || c.Nested.Timeout != 2*time.Second {
					t.Errorf("service fields = %v %v %v", c.Interval, c.Workers, c.Nested.Timeout)
				}
			},
		},
		{
			name:    "2.x token and bucket",
			environ: map[string]string{"INFLUXDB_TOKEN": "tok", "INFLUXDB_ORG": "org", "INFLUXDB_BUCKET": "telegraf"},
			check: func(t *testing.T, c service) {
				if c.AuthToken() != "tok" || c.FluxBucket() != "telegraf" || c.Org != "org" {
					t.Errorf("InfluxDB = %+v", c.InfluxDB)
				}
			},
		},
		{
			name:    "password from file, trimmed",
			environ: map[string]string{"INFLUXDB_USERNAME": "reader", "INFLUXDB_PASSWORD_FILE": pwFile},
			check: func(t *testing.T, c service) {
				if got := c.Password.Reveal(); got != "s3cret" {
					t.Errorf("Password = %q, want s3cret", got)
				}
			},
		},
		{
			name:    "value and file both set",
			environ: map[string]string{"INFLUXDB_USERNAME": "reader", "INFLUXDB_PASSWORD": "x", "INFLUXDB_PASSWORD_FILE": pwFile},
			wantErr: []string{"INFLUXDB_PASSWORD and INFLUXDB_PASSWORD_FILE are both set"},
		},
		{
			name:    "missing secret file",
			environ: map[string]string{"INFLUXDB_TOKEN_FILE": "/nonexistent/token", "INFLUXDB_ORG": "o"},
			wantErr: []string{`INFLUXDB_TOKEN_FILE="/nonexistent/token": open /nonexistent/token`},
		},
		{
			name:    "empty secret file",
			environ: map[string]string{"INFLUXDB_TOKEN_FILE": emptyFile, "INFLUXDB_ORG": "o"},
			wantErr: []string{"INFLUXDB_TOKEN_FILE=", "file is empty"},
		},
		{
			name:    "bad duration names the variable",
			environ: map[string]string{"INFLUXDB_TIMEOUT": "soon"},
			wantErr: []string{`INFLUXDB_TIMEOUT="soon": unable to parse duration`},
		},
		{
			// Both groups and the nested struct have a field called Timeout: the error must say which.
			name:    "bad nested duration is not confused with another Timeout",
			environ: map[string]string{"NESTED_TIMEOUT": "5 parsecs"},
			wantErr: []string{`NESTED_TIMEOUT="5 parsecs"`},
		},
		{
			name:    "bad numbers",
			environ: map[string]string{"KUBE_QPS": "fast", "KUBE_BURST": "1e3", "WORKERS": "-"},
			wantErr: []string{`KUBE_QPS="fast"`, `KUBE_BURST="1e3"`, `WORKERS="-"`},
		},
		{
			name:    "bad url scheme",
			environ: map[string]string{"INFLUXDB_URL": "ftp://x"},
			wantErr: []string{`INFLUXDB_URL="ftp://x": scheme must be http or https`},
		},
		{
			name:    "unparsable url",
			environ: map[string]string{"INFLUXDB_URL": "http://[::1"},
			wantErr: []string{`INFLUXDB_URL="http://[::1": missing ']' in host`},
		},
		{
			name:    "credentials in url are masked and rejected",
			environ: map[string]string{"INFLUXDB_URL": "http://u:hunter2@influx:8086"},
			wantErr: []string{`INFLUXDB_URL="http://u:xxxxx@influx:8086": credentials belong in`},
		},
		{
			name:    "validation of both embedded groups",
			environ: map[string]string{"INFLUXDB_TIMEOUT": "0s", "NAMESPACES": "ok,Not_A_Namespace", "LABEL_SELECTOR": "a in (", "KUBE_QPS": "0"},
			wantErr: []string{
				`INFLUXDB_TIMEOUT="0s": must be positive`,
				`NAMESPACES="ok,Not_A_Namespace": namespace "Not_A_Namespace"`,
				`LABEL_SELECTOR="a in ("`,
				`KUBE_QPS="0": must be positive`,
			},
		},
		{
			name:    "username without password",
			environ: map[string]string{"INFLUXDB_USERNAME": "reader"},
			wantErr: []string{`INFLUXDB_PASSWORD="": required with INFLUXDB_USERNAME`},
		},
		{
			name:    "token without org",
			environ: map[string]string{"INFLUXDB_TOKEN": "tok"},
			wantErr: []string{`INFLUXDB_ORG="": required with INFLUXDB_TOKEN`},
		},
		{
			name:    "token and username",
			environ: map[string]string{"INFLUXDB_TOKEN": "tok", "INFLUXDB_ORG": "o", "INFLUXDB_USERNAME": "u", "INFLUXDB_PASSWORD": "p"},
			wantErr: []string{"not both"},
		},
		{
			name:    "database with slash",
			environ: map[string]string{"INFLUXDB_DATABASE": "a/b"},
			wantErr: []string{`INFLUXDB_DATABASE="a/b": must not contain "/"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c service
			err := config.Load(&c, tt.environ)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var ve *config.VarError
			if !errors.As(err, &ve) && !strings.Contains(err.Error(), "both set") {
				t.Errorf("error %v is not a *config.VarError", err)
			}
		})
	}
}

func TestLoadSecretNeverInErrors(t *testing.T) {
	// A secret with a value the parser rejects: the error must not echo it.
	type cfg struct {
		PIN int `env:"PIN" secret:"true" desc:"a numeric secret"`
	}
	var c cfg
	err := config.Load(&c, map[string]string{"PIN": "hunter2"})
	if err == nil {
		t.Fatal("Load succeeded, want parse error")
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "PIN=[redacted]") {
		t.Errorf("error %q leaks the secret or does not name the variable", err)
	}
}

// validated has its own Validate, which Load must call instead of walking the groups.
type validated struct {
	config.InfluxDB
	Mode string `env:"MODE" envDefault:"a" desc:"mode"`
}

func (v validated) Validate() error {
	if v.Mode != "a" && v.Mode != "b" {
		return config.Invalid("MODE", v.Mode, "must be a or b")
	}
	return v.InfluxDB.Validate()
}

func TestLoadCallsOwnValidate(t *testing.T) {
	var c validated
	err := config.Load(&c, map[string]string{"MODE": "c", "INFLUXDB_TIMEOUT": "-1s"})
	if err == nil || err.Error() != `MODE="c": must be a or b` {
		t.Fatalf("Load error = %v, want only the MODE error", err)
	}
}

func TestLoadKeepsPresetValues(t *testing.T) {
	type cfg struct {
		Name string `env:"NAME" desc:"no default"`
	}
	c := cfg{Name: "preset"}
	if err := config.Load(&c, nil); err != nil {
		t.Fatal(err)
	}
	if c.Name != "preset" {
		t.Errorf("Name = %q, want preset kept", c.Name)
	}
}

func TestLoadRejectsNonPointer(t *testing.T) {
	for _, v := range []any{nil, service{}, (*service)(nil), new(int)} {
		if err := config.Load(v, nil); err == nil {
			t.Errorf("Load(%T) succeeded", v)
		}
	}
}

func TestDescribe(t *testing.T) {
	got := config.Describe((*service)(nil))
	want := []config.Var{
		{Name: "INFLUXDB_URL", Default: "http://localhost:8086", Description: "InfluxDB base URL (http or https)"},
		{Name: "INFLUXDB_DATABASE", Default: "k3s_telegraf_ds", Description: "database Telegraf writes to (1.8)"},
		{Name: "INFLUXDB_RETENTION_POLICY", Default: "autogen", Description: "retention policy of that database (1.8)"},
		{Name: "INFLUXDB_BUCKET", Description: "Flux bucket; empty means <database>/<retention policy>, the 1.8 compatibility name"},
		{Name: "INFLUXDB_USERNAME", Description: "user with read access (1.8 authentication); empty for none"},
		{Name: "INFLUXDB_PASSWORD", Description: "password of INFLUXDB_USERNAME", Secret: true},
		{Name: "INFLUXDB_PASSWORD_FILE", Description: "path of a file holding INFLUXDB_PASSWORD (instead of setting it directly)"},
		{Name: "INFLUXDB_TOKEN", Description: "API token (2.x); replaces username and password", Secret: true},
		{Name: "INFLUXDB_TOKEN_FILE", Description: "path of a file holding INFLUXDB_TOKEN (instead of setting it directly)"},
		{Name: "INFLUXDB_ORG", Description: "organization (2.x, required with INFLUXDB_TOKEN)"},
		{Name: "INFLUXDB_TIMEOUT", Default: "30s", Description: "limit for one HTTP request to InfluxDB, including a streamed query result"},
		{Name: "KUBECONFIG", Description: "kubeconfig path(s), colon separated; empty means in-cluster service account"},
		{Name: "NAMESPACES", Description: "comma-separated namespaces to watch; empty means all"},
		{Name: "LABEL_SELECTOR", Description: "label selector the pods must match, e.g. podtype.io/watch=true; empty means all"},
		{Name: "KUBE_QPS", Default: "20", Description: "client-side rate limit for API requests per second"},
		{Name: "KUBE_BURST", Default: "40", Description: "burst allowed above KUBE_QPS"},
		{Name: "INTERVAL", Default: "10s", Description: "scrape interval"},
		{Name: "WORKERS", Default: "4", Description: "worker goroutines"},
		{Name: "NESTED_TIMEOUT", Default: "5s", Description: "nested timeout"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Describe mismatch:\n got %+v\nwant %+v", got, want)
	}
	for _, v := range []any{nil, 3, "x"} {
		if d := config.Describe(v); d != nil {
			t.Errorf("Describe(%v) = %v, want nil", v, d)
		}
	}
}

func TestEveryFieldIsDocumented(t *testing.T) {
	for _, v := range config.Describe(service{}) {
		if v.Description == "" {
			t.Errorf("%s has no desc tag", v.Name)
		}
	}
}

func TestRedacted(t *testing.T) {
	var c service
	if err := config.Load(&c, map[string]string{
		"INFLUXDB_USERNAME": "reader", "INFLUXDB_PASSWORD": "hunter2", "NAMESPACES": "a,b",
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("start", "config", config.Redacted(&c))
	out := buf.String()
	for _, want := range []string{
		"config.INFLUXDB_PASSWORD=[redacted]", "config.INFLUXDB_TOKEN=\"\"", "config.INFLUXDB_USERNAME=reader",
		"config.INFLUXDB_TIMEOUT=30s", "config.NAMESPACES=a,b", "config.NESTED_TIMEOUT=5s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q\nmissing %q", out, want)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("log line leaks the password: %s", out)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := config.InfluxDB{Password: "hunter2", Token: ""}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "cfg", c, "pw", c.Password)
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c.Password), "json": string(js), "slog": buf.String(),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s prints the secret: %s", name, s)
		}
	}
	if c.Password.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
}
