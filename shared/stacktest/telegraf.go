package stacktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultLabelInclude are the pod labels the stack's Telegraf turns into tags, as in the k3s
// DaemonSet; StartTelegraf uses them when labelInclude is nil.
func DefaultLabelInclude() []string { return []string{"app.kubernetes.io/name", "app"} }

// telegrafSettings is what a Telegraf config for the stack depends on.
type telegrafSettings struct {
	NodeURLs     []string
	Interval     time.Duration
	LabelInclude []string
	InfluxURL    string
	Database     string
	WriteUser    string
	TokenFile    string
}

// passwordEnv carries the write user's password into Telegraf, which substitutes it at load time,
// so the config file holds no secret.
const passwordEnv = "STACK_INFLUXDB_WRITE_PASSWORD"

// logSummaryLines bounds the server log a failing test prints (see LogSummary).
const logSummaryLines = 30

// telegrafConfig renders a Telegraf config like the stack's: one inputs.kubernetes per node URL,
// one outputs.influxdb with the write user.
func telegrafConfig(s telegrafSettings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\n  interval = %s\n  flush_interval = %[1]s\n", tomlString(s.Interval.String()))
	b.WriteString("  round_interval = true\n  collection_jitter = \"0s\"\n  flush_jitter = \"0s\"\n")
	b.WriteString("  omit_hostname = true\n  skip_processors_after_aggregators = true\n")
	for _, u := range s.NodeURLs {
		fmt.Fprintf(&b, "\n[[inputs.kubernetes]]\n  url = %s\n  bearer_token = %s\n", tomlString(u), tomlString(s.TokenFile))
		fmt.Fprintf(&b, "  label_include = %s\n", tomlArray(s.LabelInclude))
		// The plugin's default label_exclude is ["*"], which drops every label despite label_include.
		b.WriteString("  label_exclude = []\n")
	}
	fmt.Fprintf(&b, "\n[[outputs.influxdb]]\n  urls = [%s]\n  database = %s\n", tomlString(s.InfluxURL), tomlString(s.Database))
	fmt.Fprintf(&b, "  skip_database_creation = true\n  username = %s\n  password = \"${%s}\"\n", tomlString(s.WriteUser), passwordEnv)
	return b.String()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlArray(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = tomlString(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// StartTelegraf runs a Telegraf of the test's own ($Bin/telegraf, config in t.TempDir()) that
// scrapes nodeURLs (http://ADDR/nodes/<node>) every interval and writes to InfluxDatabase as the
// write user; labelInclude nil means DefaultLabelInclude. It returns once Telegraf has loaded its
// config, is stopped in t.Cleanup, and fails the test (with Telegraf's log) when it exits early.
func (e *Env) StartTelegraf(t testing.TB, nodeURLs []string, interval time.Duration, labelInclude []string) {
	t.Helper()
	switch {
	case len(nodeURLs) == 0:
		t.Fatalf("stacktest: StartTelegraf: no node URLs")
	case interval <= 0:
		t.Fatalf("stacktest: StartTelegraf: interval %v: want > 0", interval)
	case e.WriteUser == "" || e.WritePassword == "":
		t.Fatalf("stacktest: StartTelegraf: STACK_INFLUXDB_WRITE_USERNAME/PASSWORD are not set")
	}
	if labelInclude == nil {
		labelInclude = DefaultLabelInclude()
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "kubelet-token")
	confFile := filepath.Join(dir, "telegraf.conf")
	logFile := filepath.Join(dir, "telegraf.log")
	conf := telegrafConfig(telegrafSettings{
		NodeURLs: nodeURLs, Interval: interval, LabelInclude: labelInclude,
		InfluxURL: e.InfluxURL, Database: e.InfluxDatabase, WriteUser: e.WriteUser, TokenFile: tokenFile,
	})
	if err := os.WriteFile(tokenFile, []byte("stacktest\n"), 0o600); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}

	cmd := exec.Command(filepath.Join(e.Bin, "telegraf"), "--strict-env-handling", "--config", confFile)
	// A clean environment: nothing from the test's (INFLUXDB_*, proxies) leaks into Telegraf.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, passwordEnv + "=" + e.WritePassword}
	cmd.Stdout, cmd.Stderr = logOut, logOut
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logOut.Close()
		t.Fatalf("stacktest: start telegraf: %v", err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		logOut.Close()
	}()
	// The log in a failure message is summarised: see LogSummary.
	readLog := func() string {
		b, _ := os.ReadFile(logFile)
		return LogSummary(string(b), logSummaryLines)
	}

	startFailed := false
	t.Cleanup(func() {
		if startFailed {
			return
		}
		select {
		case err := <-exited:
			t.Errorf("stacktest: telegraf (pid %d) exited before the test ended: %v\n%s", cmd.Process.Pid, err, readLog())
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("stacktest: telegraf log (summary):\n%s", readLog())
		}
	})

	// "[agent] Config:" is logged once every plugin is loaded and initialised, just before the
	// inputs start; a config error exits before it.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			startFailed = true
			t.Fatalf("stacktest: telegraf exited while starting: %v\n%s", err, readLog())
		case <-deadline:
			t.Fatalf("stacktest: telegraf did not load its config within 30s\n%s", readLog())
		case <-tick.C:
			if b, _ := os.ReadFile(logFile); bytes.Contains(b, []byte("[agent] Config:")) {
				return
			}
		}
	}
}
