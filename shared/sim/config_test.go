package sim

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "namespace", edit: func(c *Config) { c.Namespace = "Bad_NS" }, wantErr: `Namespace="Bad_NS"`},
		{name: "node prefix", edit: func(c *Config) { c.NodePrefix = "UP/" }, wantErr: `NodePrefix="UP/"`},
		{name: "no nodes", edit: func(c *Config) { c.Nodes = 0 }, wantErr: "Nodes=0"},
		{name: "too many nodes", edit: func(c *Config) { c.Nodes = 251 }, wantErr: "Nodes=251"},
		{name: "unknown type", edit: func(c *Config) { c.Types = []string{"oracle"} }, wantErr: "Types=oracle"},
		{name: "duplicate type", edit: func(c *Config) { c.Types = []string{"redis", "redis"} }, wantErr: "Types=redis: given twice"},
		{name: "negative pods", edit: func(c *Config) { c.PodsPerType = -1 }, wantErr: "PodsPerType=-1"},
		{name: "zero step", edit: func(c *Config) { c.Step = 0 }, wantErr: "Step=0s"},
		{name: "short day", edit: func(c *Config) { c.DayLength = time.Second }, wantErr: "DayLength=1s"},
		{name: "share", edit: func(c *Config) { c.PartialMemoryShare = 1.5 }, wantErr: "PartialMemoryShare=1.5"},
		{name: "shares sum", edit: func(c *Config) { c.AppLabelShare, c.UnlabelledShare = 0.6, 0.6 }, wantErr: "AppLabelShare+UnlabelledShare"},
		{name: "fault", edit: func(c *Config) { c.Faults = []FaultSpec{{Pod: "x", Kind: "boom"}} }, wantErr: `unknown fault "boom"`},
		{name: "fault rate", edit: func(c *Config) { c.FaultRate = -1 }, wantErr: "FaultRate=-1"},
		{name: "fault durations", edit: func(c *Config) { c.FaultMaxDuration = time.Second }, wantErr: "FaultMinDuration/FaultMaxDuration"},
		{name: "churn", edit: func(c *Config) { c.ChurnRate = -2 }, wantErr: "ChurnRate=-2"},
		{name: "workers", edit: func(c *Config) { c.Workers = 0 }, wantErr: "Workers=0"},
		{name: "several at once", edit: func(c *Config) { c.Workers, c.Nodes = 0, 0 }, wantErr: "Nodes=0: must be in [1, 250]\nsim config: Workers=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := New(cfg, nil); err == nil {
				t.Errorf("New accepted the invalid config")
			}
		})
	}
}

func TestNewRejectsUnknownFaultPods(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Faults = []FaultSpec{{Pod: "mysql-9", Kind: DiskFill}}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "no 9-th mysql pod") {
		t.Errorf("New error = %v, want the unknown pod named", err)
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"mysql:8.4", "docker.io/library/mysql:8.4"},
		{"bitnami/mysql:8.0", "docker.io/bitnami/mysql:8.0"},
		{"docker.io/library/redis:7", "docker.io/library/redis:7"},
		{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws/nginx/nginx:1.27"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"registry:5000/team/app:v1", "registry:5000/team/app:v1"},
		{"mongo@sha256:abc", "docker.io/library/mongo@sha256:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := NormalizeImage(tt.in); got != tt.want {
				t.Errorf("NormalizeImage(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	im := Image{Spec: "bitnami/redis:7.2"}
	if !strings.HasPrefix(im.DigestRef(), "docker.io/bitnami/redis@sha256:") || len(im.Digest()) != len("sha256:")+64 {
		t.Errorf("DigestRef %q", im.DigestRef())
	}
}
