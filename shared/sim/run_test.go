package sim

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unreachableKubeconfig writes a kubeconfig for an API server nothing listens on: the client
// builds, every request fails at once.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestRunKubeletAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := DefaultConfig()
	cfg.Kubeconfig = unreachableKubeconfig(t)
	cfg.KubeletAddr = l.Addr().String()
	err = Run(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "kubelets") || !strings.Contains(err.Error(), cfg.KubeletAddr) {
		t.Fatalf("Run with %s taken: error %v, want one naming the kubelets and the address", cfg.KubeletAddr, err)
	}
}

// TestRunReleasesKubeletAddress: whether registration fails or the run times out, the fake
// kubelets are shut down by the time Run returns, so the address can be listened on again.
func TestRunReleasesKubeletAddress(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Kubeconfig = unreachableKubeconfig(t)
	cfg.KubeletAddr = freeAddr(t)
	cfg.Duration = 3 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := Run(ctx, cfg, nil)
	t.Logf("Run: %v", err)
	if err != nil && !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Run: %v, want nil or an error naming the unreachable API server", err)
	}
	l, err := net.Listen("tcp", cfg.KubeletAddr)
	if err != nil {
		t.Fatalf("kubelet address still in use after Run returned: %v", err)
	}
	_ = l.Close()
}
