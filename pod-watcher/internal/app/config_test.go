package app

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/config"
)

func load(env map[string]string) (Config, error) {
	var cfg Config
	err := config.Load(&cfg, env)
	return cfg, err
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := load(map[string]string{"MODEL_PATH": "/models/bundle.json.gz"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PollInterval != 10*time.Second || cfg.MinConfidence != 0.5 || cfg.AnomalyRaiseWindows != 6 ||
		cfg.LeaderElect != "auto" || cfg.InfluxDB.Database != "k3s_telegraf_ds" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigErrorsNameVariableAndValue(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, `MODEL_URL="": set MODEL_URL or MODEL_PATH`},
		{map[string]string{"MODEL_URL": "ftp://collector/model"}, `MODEL_URL="ftp://collector/model": scheme must be http or https`},
		{map[string]string{"MIN_CONFIDENCE": "1.5"}, `MIN_CONFIDENCE="1.5": must be in [0,1]`},
		{map[string]string{"POLL_INTERVAL": "0s"}, `POLL_INTERVAL="0s": must be positive`},
		{map[string]string{"POLL_INTERVAL": "soon"}, `POLL_INTERVAL="soon"`},
		{map[string]string{"FETCH_MAX_BACKOFF": "1s"}, `FETCH_MAX_BACKOFF="1s": must be at least POLL_INTERVAL (10s)`},
		{map[string]string{"ANOMALY_CLEAR_WINDOWS": "0"}, `ANOMALY_CLEAR_WINDOWS="0": must be at least 1`},
		{map[string]string{"LEADER_ELECT": "maybe"}, `LEADER_ELECT="maybe": must be true, false or auto`},
		{map[string]string{"ACTION_COMMAND": `["/bin/notify",`}, `ACTION_COMMAND="[\"/bin/notify\",": not a JSON array of strings`},
		{map[string]string{"LOG_FORMAT": "xml"}, `LOG_FORMAT="xml": must be json or text`},
		{map[string]string{"INFLUXDB_URL": "localhost:8086"}, `INFLUXDB_URL="localhost:8086"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			env := map[string]string{"MODEL_PATH": "/m"}
			if _, set := tt.env["MODEL_URL"]; set || len(tt.env) == 0 {
				delete(env, "MODEL_PATH")
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := load(env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %s", err, tt.want)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"/usr/local/bin/notify", []string{"/usr/local/bin/notify"}, false},
		{"/opt/my tools/notify", []string{"/opt/my tools/notify"}, false},
		{`["/bin/notify", "--channel", "ops; rm -rf /"]`, []string{"/bin/notify", "--channel", "ops; rm -rf /"}, false},
		{`[]`, nil, true},
		{`[""]`, nil, true},
		{`["a", 1]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c Command
			err := c.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr || (!tt.wantErr && fmt.Sprint([]string(c)) != fmt.Sprint(tt.want)) {
				t.Errorf("UnmarshalText(%q) = %q, %v; want %q, error %v", tt.in, c, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLeaderElect(t *testing.T) {
	tests := []struct {
		value, kubeconfig string
		inCluster, want   bool
	}{
		{"auto", "", true, true},
		{"auto", "/home/me/.kube/config", true, false},
		{"auto", "", false, false},
		{"true", "/k", false, true},
		{"false", "", true, false},
	}
	for _, tt := range tests {
		cfg := Config{LeaderElect: tt.value}
		cfg.Kubernetes.Kubeconfig = tt.kubeconfig
		if got, err := cfg.leaderElect(tt.inCluster); err != nil || got != tt.want {
			t.Errorf("%+v: %v, %v; want %v", tt, got, err, tt.want)
		}
	}
}
