package stacktest

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "export and single quotes", in: "export A='x y'\n", want: map[string]string{"A": "x y"}},
		{name: "no export", in: "A=plain\n", want: map[string]string{"A": "plain"}},
		{name: "quote inside single quotes", in: `export A='it'\''s'` + "\n", want: map[string]string{"A": "it's"}},
		{name: "double quotes with escapes", in: `A="a \"b\" \$c \\d"`, want: map[string]string{"A": `a "b" $c \d`}},
		{name: "backslash outside quotes", in: `A=a\ b`, want: map[string]string{"A": "a b"}},
		{name: "empty value", in: "A=\nB=''\n", want: map[string]string{"A": "", "B": ""}},
		{name: "comments and blanks", in: "# c\n\n  export A='1' # trailing\n", want: map[string]string{"A": "1"}},
		{name: "value with equals", in: "A='k=v'\n", want: map[string]string{"A": "k=v"}},
		{name: "later line wins", in: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "no equals", in: "export A\n", wantErr: "line 1"},
		{name: "bad name", in: "1A=x\n", wantErr: "line 1"},
		{name: "name with dash", in: "# ok\nA-B=x\n", wantErr: "line 2"},
		{name: "unterminated single quote", in: "A='x\n", wantErr: "line 1 (A): unterminated single quote"},
		{name: "unterminated double quote", in: `A="x`, wantErr: "unterminated double quote"},
		{name: "trailing backslash", in: `A=x\`, wantErr: "trailing backslash"},
		{name: "text after value", in: "A=x y\n", wantErr: `unexpected text after the value: "y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnvFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseEnvFile(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEnvFile(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseEnvFile(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// fullEnv is the Env that testdata/stack.env (written like stack-up writes it) describes.
func fullEnv() *Env {
	return &Env{
		Kubeconfig: "/repo/.stack/kubeconfig", InfluxURL: "http://127.0.0.1:25769", InfluxDatabase: "k3s_telegraf_ds",
		InfluxUser: "podtype_reader", InfluxPassword: "read-secret",
		AdminUser: "podtype_admin", AdminPassword: "admin-secret",
		WriteUser: "telegraf", WritePassword: "write-secret",
		Bin: "/repo/.cache/stack/bin", APIServerURL: "https://127.0.0.1:26321", TokenFile: "/repo/.stack/tokens.csv",
		TelegrafInterval: 10 * time.Second,
	}
}

func TestReadEnvFileStackFormat(t *testing.T) {
	vars, err := readEnvFile(filepath.Join("testdata", "stack.env"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fromVars(vars)
	if err != nil {
		t.Fatal(err)
	}
	if want := fullEnv(); !reflect.DeepEqual(got, want) {
		t.Errorf("env from testdata/stack.env:\n got %+v\nwant %+v", got, want)
	}
}

func TestFromVars(t *testing.T) {
	minimal := func() map[string]string {
		return map[string]string{
			"KUBECONFIG": "/k", "INFLUXDB_URL": "http://i", "INFLUXDB_USERNAME": "r", "INFLUXDB_PASSWORD": "p", "STACK_BIN": "/b",
		}
	}
	tests := []struct {
		name    string
		change  func(map[string]string)
		check   func(t *testing.T, e *Env)
		wantErr string
	}{
		{name: "defaults", change: func(map[string]string) {}, check: func(t *testing.T, e *Env) {
			if e.InfluxDatabase != "k3s_telegraf_ds" || e.TelegrafInterval != 10*time.Second {
				t.Errorf("defaults: database %q, interval %v", e.InfluxDatabase, e.TelegrafInterval)
			}
		}},
		{name: "interval", change: func(m map[string]string) { m["TELEGRAF_INTERVAL"] = "1s" }, check: func(t *testing.T, e *Env) {
			if e.TelegrafInterval != time.Second {
				t.Errorf("TelegrafInterval = %v, want 1s", e.TelegrafInterval)
			}
		}},
		{name: "bad interval", change: func(m map[string]string) { m["TELEGRAF_INTERVAL"] = "soon" }, wantErr: `TELEGRAF_INTERVAL="soon"`},
		{name: "negative interval", change: func(m map[string]string) { m["TELEGRAF_INTERVAL"] = "-1s" }, wantErr: `TELEGRAF_INTERVAL="-1s"`},
		{name: "missing required", change: func(m map[string]string) { delete(m, "KUBECONFIG"); m["STACK_BIN"] = "" },
			wantErr: "missing KUBECONFIG, STACK_BIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := minimal()
			tt.change(vars)
			e, err := fromVars(vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("fromVars error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, e)
		})
	}
}

func TestLoad(t *testing.T) {
	stackEnv, err := os.ReadFile(filepath.Join("testdata", "stack.env"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		withFile bool
		process  map[string]string
		want     func() *Env
		wantErr  string
	}{
		{
			name: "file only", withFile: true, want: fullEnv,
		},
		{
			// A developer's own KUBECONFIG must not send tests to their real cluster.
			name: "process env without STACK_BIN is ignored", withFile: true,
			process: map[string]string{"KUBECONFIG": "/home/me/.kube/config"}, want: fullEnv,
		},
		{
			name: "sourced env wins, file fills the rest", withFile: true,
			process: map[string]string{"STACK_BIN": "/other/bin", "INFLUXDB_URL": "http://127.0.0.1:1", "TELEGRAF_INTERVAL": "2s"},
			want: func() *Env {
				e := fullEnv()
				e.Bin, e.InfluxURL, e.TelegrafInterval = "/other/bin", "http://127.0.0.1:1", 2*time.Second
				return e
			},
		},
		{
			name: "sourced env without file",
			process: map[string]string{
				"STACK_BIN": "/b", "KUBECONFIG": "/k", "INFLUXDB_URL": "http://i", "INFLUXDB_USERNAME": "r", "INFLUXDB_PASSWORD": "p",
			},
			want: func() *Env {
				return &Env{Bin: "/b", Kubeconfig: "/k", InfluxURL: "http://i", InfluxUser: "r", InfluxPassword: "p",
					InfluxDatabase: "k3s_telegraf_ds", TelegrafInterval: 10 * time.Second}
			},
		},
		{name: "no stack", wantErr: "no such file"},
		{name: "sourced but incomplete", process: map[string]string{"STACK_BIN": "/b"}, wantErr: "missing KUBECONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26.0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.withFile {
				if err := os.MkdirAll(filepath.Join(root, ".stack"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, ".stack", "env"), stackEnv, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(root, "shared", "stacktest")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			lookup := func(k string) (string, bool) { v, ok := tt.process[k]; return v, ok }
			got, err := load(lookup, dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("load:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestRepoRootMissing(t *testing.T) {
	if _, err := repoRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no go.work") {
		t.Errorf("repoRoot without go.work: error = %v, want one naming go.work", err)
	}
}

func TestParseTokenFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{
			name: "stack-up format",
			in:   "t1,podtype-admin,podtype-admin,\"system:masters\"\nt2,podtype-test,podtype-test\n",
			want: map[string]string{"podtype-admin": "t1", "podtype-test": "t2"},
		},
		{name: "groups with commas", in: "t1,u,1,\"a,b\"\n", want: map[string]string{"u": "t1"}},
		{name: "empty", in: "", want: map[string]string{}},
		{name: "too few columns", in: "t1,u\n", wantErr: "record 1"},
		{name: "empty token", in: "t1,u,1\n,v,2\n", wantErr: "record 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTokenFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTokenFile error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseTokenFile = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUniqueName(t *testing.T) {
	tests := []struct {
		prefix     string
		wantPrefix string
	}{
		{"podtype", "podtype-"},
		{"PodType_Test.1", "podtype-test-1-"},
		{"--x--", "x-"},
		{"", "t-"},
		{"!!!", "t-"},
		{strings.Repeat("a", 100), strings.Repeat("a", 54) + "-"},
		{strings.Repeat("a", 53) + "-b", strings.Repeat("a", 53) + "-"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got := UniqueName(tt.prefix)
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("UniqueName(%q) = %q, not a DNS-1123 label: %v", tt.prefix, got, errs)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) || len(got) != len(tt.wantPrefix)+8 {
				t.Errorf("UniqueName(%q) = %q, want %q + 8 random characters", tt.prefix, got, tt.wantPrefix)
			}
			if again := UniqueName(tt.prefix); again == got {
				t.Errorf("UniqueName(%q) returned %q twice", tt.prefix, got)
			}
		})
	}
}

func TestTelegrafConfig(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		s      telegrafSettings
	}{
		{
			name: "stack default labels", golden: "telegraf-default.conf",
			s: telegrafSettings{
				NodeURLs: []string{"http://127.0.0.1:20589/nodes/sim-node-1", "http://127.0.0.1:20589/nodes/sim-node-2"},
				Interval: time.Second, LabelInclude: DefaultLabelInclude(), InfluxURL: "http://127.0.0.1:25769",
				Database: "k3s_telegraf_ds", WriteUser: "telegraf", TokenFile: "/tmp/t/kubelet-token",
			},
		},
		{
			name: "quoting and no labels", golden: "telegraf-quoting.conf",
			s: telegrafSettings{
				NodeURLs: []string{`http://h/nodes/a"b\c`}, Interval: 1500 * time.Millisecond, LabelInclude: []string{},
				InfluxURL: "http://i", Database: "db", WriteUser: "w\tx", TokenFile: "/t",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := telegrafConfig(tt.s)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("telegrafConfig differs from %s:\n%s", path, got)
			}
		})
	}
}
