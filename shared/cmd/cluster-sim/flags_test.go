package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/sim"
)

func TestParse(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o options)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o options) {
				if o.cfg.Nodes != 3 || o.cfg.Namespace != "sim" || o.cfg.NodePrefix != "sim-" || o.cfg.KubeletAddr != "127.0.0.1:10255" ||
					o.cfg.PodsPerType != 4 || o.cfg.Tick != time.Second || o.cfg.Types != nil {
					t.Errorf("defaults: %+v", o.cfg)
				}
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"SIM_NODES": "5", "SIM_KUBELET_ADDR": "127.0.0.1:9999", "KUBECONFIG": "/k", "SIM_TYPES": "mysql, nginx",
				"SIM_DAY_LENGTH": "10m", "SIM_CLEANUP": "true", "SIM_KUBELET_TOKEN_FILE": token, "SIM_FAULT_RATE": "0.5",
			},
			check: func(t *testing.T, o options) {
				c := o.cfg
				if c.Nodes != 5 || c.KubeletAddr != "127.0.0.1:9999" || c.Kubeconfig != "/k" || strings.Join(c.Types, ",") != "mysql,nginx" ||
					c.DayLength != 10*time.Minute || !c.Cleanup || c.KubeletToken != "s3cret" || c.FaultRate != 0.5 {
					t.Errorf("from env: %+v", c)
				}
			},
		},
		{
			name: "flags override the environment",
			args: []string{"-nodes", "2", "-namespace", "flagged", "-faults", "pod=mysql-1,fault=disk_fill,start=1m"},
			env:  map[string]string{"SIM_NODES": "7", "SIM_NAMESPACE": "fromenv", "SIM_SEED": "9"},
			check: func(t *testing.T, o options) {
				c := o.cfg
				if c.Nodes != 2 || c.Namespace != "flagged" || c.Seed != 9 || len(c.Faults) != 1 || c.Faults[0].Kind != sim.DiskFill {
					t.Errorf("flags over env: %+v", c)
				}
			},
		},
		{name: "bad env value", env: map[string]string{"SIM_NODES": "many"}, wantErr: `$SIM_NODES="many"`},
		{name: "bad type", args: []string{"-types", "oracle"}, wantErr: "Types=oracle"},
		{name: "bad faults", args: []string{"-faults", "pod=x"}, wantErr: "-faults"},
		{name: "bad fault kind", args: []string{"-fault-kinds", "meltdown"}, wantErr: "-fault-kinds"},
		{name: "missing token file", args: []string{"-kubelet-token-file", "/nonexistent"}, wantErr: "-kubelet-token-file"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: "-log-level"},
		{name: "stray argument", args: []string{"run"}, wantErr: "unexpected arguments"},
		{name: "invalid config", args: []string{"-nodes", "0"}, wantErr: "Nodes=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}
