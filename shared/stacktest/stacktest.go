// Package stacktest gives integration tests (build tag `integration`) the local stack that
// scripts/stack-up.sh runs: InfluxDB 1.8, etcd + kube-apiserver and Telegraf on loopback.
//
// Load reads the stack's endpoints and credentials; the helpers build Kubernetes clients, run Flux
// queries as the read user and start a test's own Telegraf. Tests isolate themselves with
// UniqueName (namespaces, node-name prefixes, measurements), never by resetting the stack.
//
// Kubernetes identities: the admin kubeconfig is Env.Kubeconfig. Extra static users are listed in
// scripts/stack/users.csv (stack-up gives each a token in Env.TokenFile, the apiserver's
// token,user,uid,"groups" file); UserConfig logs in as one of them. A test that needs an identity
// only for itself can create a ServiceAccount and get a token with the TokenRequest API.
package stacktest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is the local stack as seen by a test.
type Env struct {
	// Kubeconfig is the admin kubeconfig (token in group system:masters, TLS verified).
	Kubeconfig string
	// InfluxURL is InfluxDB's HTTP endpoint, e.g. http://127.0.0.1:25769.
	InfluxURL string
	// InfluxDatabase is the database Telegraf writes to (k3s_telegraf_ds).
	InfluxDatabase string
	// InfluxUser and InfluxPassword are the read-only user the services use.
	InfluxUser, InfluxPassword string
	// AdminUser and AdminPassword are InfluxDB's admin, for test setup and cleanup only.
	AdminUser, AdminPassword string
	// WriteUser and WritePassword are Telegraf's write-only user.
	WriteUser, WritePassword string
	// Bin is the directory holding influxd, telegraf, etcd, kube-apiserver and kubectl.
	Bin string
	// APIServerURL is the kube-apiserver's https URL.
	APIServerURL string
	// TokenFile is the apiserver's static token file (token,user,uid,"groups").
	TokenFile string
	// TelegrafInterval is the stack's own Telegraf collection interval.
	TelegrafInterval time.Duration
}

// envVar is one variable of .stack/env and the Env field it fills.
type envVar struct {
	name     string
	required bool
	field    func(*Env) *string
}

// envFileVars lists the variables of .stack/env that fill string fields of Env.
func envFileVars() []envVar {
	return []envVar{
		{"KUBECONFIG", true, func(e *Env) *string { return &e.Kubeconfig }},
		{"INFLUXDB_URL", true, func(e *Env) *string { return &e.InfluxURL }},
		{"INFLUXDB_DATABASE", false, func(e *Env) *string { return &e.InfluxDatabase }},
		{"INFLUXDB_USERNAME", true, func(e *Env) *string { return &e.InfluxUser }},
		{"INFLUXDB_PASSWORD", true, func(e *Env) *string { return &e.InfluxPassword }},
		{"STACK_INFLUXDB_ADMIN_USERNAME", false, func(e *Env) *string { return &e.AdminUser }},
		{"STACK_INFLUXDB_ADMIN_PASSWORD", false, func(e *Env) *string { return &e.AdminPassword }},
		{"STACK_INFLUXDB_WRITE_USERNAME", false, func(e *Env) *string { return &e.WriteUser }},
		{"STACK_INFLUXDB_WRITE_PASSWORD", false, func(e *Env) *string { return &e.WritePassword }},
		{"STACK_BIN", true, func(e *Env) *string { return &e.Bin }},
		{"STACK_APISERVER_URL", false, func(e *Env) *string { return &e.APIServerURL }},
		{"STACK_TOKEN_FILE", false, func(e *Env) *string { return &e.TokenFile }},
	}
}

const (
	defaultDatabase         = "k3s_telegraf_ds"
	defaultTelegrafInterval = 10 * time.Second
	// stackMarker is set only where .stack/env was sourced (or CI exported the stack by hand).
	stackMarker = "STACK_BIN"
)

// Load returns the local stack's settings: from the process environment when `. .stack/env` was
// sourced (STACK_BIN is set; missing values are filled from the file), else from <repo>/.stack/env,
// the repository root being the first directory above the working directory holding go.work.
// Without a stack it skips the test when STACK_OPTIONAL=1 and fails it otherwise.
//
// The process environment alone (without STACK_BIN) is ignored on purpose: a developer's own
// KUBECONFIG must never send integration tests to a real cluster.
func Load(t testing.TB) *Env {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("stacktest: working directory: %v", err)
	}
	env, err := load(os.LookupEnv, wd)
	if err != nil {
		if os.Getenv("STACK_OPTIONAL") == "1" {
			t.Skipf("stacktest: no local stack (%v); skipped because STACK_OPTIONAL=1", err)
		}
		t.Fatalf("stacktest: no local stack: %v: run make stack-up (or set STACK_OPTIONAL=1 to skip)", err)
	}
	return env
}

// load is Load without testing.TB: lookup reads the process environment, dir is where the search
// for the repository root starts.
func load(lookup func(string) (string, bool), dir string) (*Env, error) {
	vars := map[string]string{}
	_, sourced := lookup(stackMarker)
	if sourced {
		for _, v := range envFileVars() {
			if val, ok := lookup(v.name); ok {
				vars[v.name] = val
			}
		}
		if val, ok := lookup("TELEGRAF_INTERVAL"); ok {
			vars["TELEGRAF_INTERVAL"] = val
		}
	}
	root, rootErr := repoRoot(dir)
	if rootErr == nil {
		file, err := readEnvFile(filepath.Join(root, ".stack", "env"))
		switch {
		case err == nil:
			for k, v := range file {
				if _, ok := vars[k]; !ok {
					vars[k] = v
				}
			}
		case !sourced || !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	} else if !sourced {
		return nil, rootErr
	}
	return fromVars(vars)
}

// repoRoot walks up from dir to the first directory holding go.work.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work in %s or any parent directory", dir)
		}
	}
}

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stack env file: %w", err)
	}
	defer f.Close()
	vars, err := parseEnvFile(f)
	if err != nil {
		return nil, fmt.Errorf("stack env file %s: %w", path, err)
	}
	return vars, nil
}

// fromVars builds an Env from variables named as in .stack/env; errors name the variable.
func fromVars(vars map[string]string) (*Env, error) {
	e := &Env{}
	var missing []string
	for _, v := range envFileVars() {
		val := vars[v.name]
		if val == "" && v.required {
			missing = append(missing, v.name)
		}
		*v.field(e) = val
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("stack env: missing %s", strings.Join(missing, ", "))
	}
	if e.InfluxDatabase == "" {
		e.InfluxDatabase = defaultDatabase
	}
	e.TelegrafInterval = defaultTelegrafInterval
	if s := vars["TELEGRAF_INTERVAL"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("stack env: TELEGRAF_INTERVAL=%q: want a positive duration like 10s", s)
		}
		e.TelegrafInterval = d
	}
	return e, nil
}

// parseEnvFile reads the `export KEY='value'` lines stack-up writes. It understands the shell
// quoting used there (single quotes, with quote-backslash-quote-quote for a quote inside; double quotes;
// backslash escapes), blank lines and # comments; anything else is an error naming the line.
func parseEnvFile(r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !validName(key) {
			return nil, fmt.Errorf("line %d: want KEY=value, got %q", n, sc.Text())
		}
		val, err := shellWord(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", n, key, err)
		}
		vars[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// shellWord unquotes one shell word; an unquoted blank ends it and must start a comment or the end.
func shellWord(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", errors.New("unterminated double quote")
			}
		case '\\':
			if i+1 >= len(s) {
				return "", errors.New("trailing backslash")
			}
			i++
			b.WriteByte(s[i])
		case ' ', '\t':
			if rest := strings.TrimSpace(s[i:]); rest != "" && !strings.HasPrefix(rest, "#") {
				return "", fmt.Errorf("unexpected text after the value: %q", rest)
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// RESTConfig returns a new admin rest.Config from Kubeconfig (callers may change it).
func (e *Env) RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: e.Kubeconfig}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		t.Fatalf("stacktest: kubeconfig %s: %v", e.Kubeconfig, err)
	}
	// Tests create many objects quickly; client-go's default 5 QPS would make them slow, not safer.
	cfg.QPS, cfg.Burst = 100, 200
	return cfg
}

// Clientset returns an admin clientset.
func (e *Env) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(e.RESTConfig(t))
	if err != nil {
		t.Fatalf("stacktest: clientset: %v", err)
	}
	return cs
}

// UserConfig returns a rest.Config that authenticates as user, one of the static users of
// scripts/stack/users.csv, with its token from TokenFile (TLS settings as the admin's).
func (e *Env) UserConfig(t testing.TB, user string) *rest.Config {
	t.Helper()
	if e.TokenFile == "" {
		t.Fatalf("stacktest: STACK_TOKEN_FILE is not set")
	}
	f, err := os.Open(e.TokenFile)
	if err != nil {
		t.Fatalf("stacktest: token file: %v", err)
	}
	defer f.Close()
	tokens, err := parseTokenFile(f)
	if err != nil {
		t.Fatalf("stacktest: token file %s: %v", e.TokenFile, err)
	}
	token, ok := tokens[user]
	if !ok {
		t.Fatalf("stacktest: user %q is not in %s: add it to scripts/stack/users.csv and run make stack-up", user, e.TokenFile)
	}
	cfg := rest.AnonymousClientConfig(e.RESTConfig(t))
	cfg.BearerToken = token
	return cfg
}

// parseTokenFile reads the apiserver's static token file into user name -> token.
func parseTokenFile(r io.Reader) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	tokens := map[string]string{}
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return tokens, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 3 || rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("record %d: want token,user,uid[,groups], got %d fields", n, len(rec))
		}
		tokens[rec[1]] = rec[0]
	}
}

// Flux runs query as the read user (what the services use) over /api/v2/query and returns every
// record's values (_time, _value, _field, _measurement, tags, ...). It fails the test on any error,
// so call it from the test's goroutine.
func (e *Env) Flux(ctx context.Context, t testing.TB, query string) []map[string]any {
	t.Helper()
	client := influxdb2.NewClientWithOptions(e.InfluxURL, e.InfluxUser+":"+e.InfluxPassword,
		influxdb2.DefaultOptions().SetHTTPRequestTimeout(60))
	defer client.Close()
	res, err := client.QueryAPI("").Query(ctx, query)
	if err != nil {
		t.Fatalf("stacktest: flux query as %s: %v\nquery: %s", e.InfluxUser, err, query)
	}
	defer res.Close()
	var rows []map[string]any
	for res.Next() {
		rows = append(rows, maps.Clone(res.Record().Values()))
	}
	if err := res.Err(); err != nil {
		t.Fatalf("stacktest: flux result as %s: %v\nquery: %s", e.InfluxUser, err, query)
	}
	return rows
}

// maxLabel is the length limit of a DNS-1123 label (namespace and most object names).
const maxLabel = 63

// UniqueName returns prefix plus a random suffix as a DNS-1123 label (lower case alphanumerics
// and '-', at most 63 characters): characters the label cannot hold become '-'.
func UniqueName(prefix string) string {
	var buf [4]byte
	// crypto/rand never fails on Linux (Go 1.24+ panics instead of returning an error).
	_, _ = rand.Read(buf[:])
	suffix := hex.EncodeToString(buf[:])
	p := []byte(strings.ToLower(prefix))
	for i, c := range p {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			p[i] = '-'
		}
	}
	s := strings.Trim(string(p), "-")
	if limit := maxLabel - len(suffix) - 1; len(s) > limit {
		s = strings.TrimRight(s[:limit], "-")
	}
	if s == "" {
		return "t-" + suffix
	}
	return s + "-" + suffix
}
