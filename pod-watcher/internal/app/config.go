package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/podtype/podtype/shared/config"
)

// Config is the pod-watcher's configuration, read from the environment by config.LoadEnv.
type Config struct {
	InfluxDB   config.InfluxDB
	Kubernetes config.Kubernetes

	ListenAddr string `env:"LISTEN_ADDR" envDefault:":8080" desc:"address of the HTTP server (/metrics, /healthz, /readyz)"`
	LogLevel   string `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error"`
	LogFormat  string `env:"LOG_FORMAT" envDefault:"json" desc:"json or text"`

	ModelURL     string        `env:"MODEL_URL" desc:"metrics-collector bundle endpoint, e.g. http://metrics-collector:8080/model; wins over MODEL_PATH"`
	ModelPath    string        `env:"MODEL_PATH" desc:"model bundle file, used when MODEL_URL is empty"`
	ModelRefresh time.Duration `env:"MODEL_REFRESH" envDefault:"1m" desc:"how often the model source is checked for a new bundle"`

	PollInterval    time.Duration `env:"POLL_INTERVAL" envDefault:"10s" desc:"time between two InfluxDB reads (one query for all pods); match Telegraf's interval"`
	FetchOverlap    time.Duration `env:"FETCH_OVERLAP" envDefault:"20s" desc:"time range re-read every poll for samples Telegraf wrote late; at least its flush interval"`
	FetchMaxBackoff time.Duration `env:"FETCH_MAX_BACKOFF" envDefault:"2m" desc:"longest wait between reads while InfluxDB fails"`

	MinSamples          int           `env:"MIN_SAMPLES" envDefault:"0" desc:"samples a pod needs before it is classified on its latest window, at least the model's window; 0: two windows, skipping the pod's start-up, which training data from long-running pods rarely contain"`
	ClassifyTimeout     time.Duration `env:"CLASSIFY_TIMEOUT" envDefault:"15m" desc:"waiting time after which a pod without enough metrics is marked unclassified; InfluxDB outages do not count"`
	MinConfidence       float64       `env:"MIN_CONFIDENCE" envDefault:"0.5" desc:"classifier probability below which a pod's type is unknown"`
	OpenSetMargin       float64       `env:"OPEN_SET_MARGIN" envDefault:"0" desc:"how far above its anomaly threshold a new pod's window must score for the nearest type's forest to call the pod unknown"`
	AnomalyRaiseWindows int           `env:"ANOMALY_RAISE_WINDOWS" envDefault:"6" desc:"consecutive anomalous windows (one per poll) that open an anomaly; the default is half the trainer's default window of 12 samples, since one odd sample is in a whole window of polls"`
	AnomalyClearWindows int           `env:"ANOMALY_CLEAR_WINDOWS" envDefault:"5" desc:"consecutive normal windows that close it"`
	TopFeatures         int           `env:"TOP_FEATURES" envDefault:"3" desc:"deviating features named in an anomaly Event"`
	Workers             int           `env:"WORKERS" envDefault:"2" desc:"goroutines reconciling pod events"`

	ActionWebhookURL    string        `env:"ACTION_WEBHOOK_URL" desc:"URL that receives a JSON POST for every anomaly episode; empty disables"`
	ActionCommand       Command       `env:"ACTION_COMMAND" desc:"command run (without a shell) for every anomaly episode: a path or a JSON array of path and arguments; the anomaly is in PODTYPE_* variables and on stdin"`
	ActionTimeout       time.Duration `env:"ACTION_TIMEOUT" envDefault:"30s" desc:"time limit of one webhook call or command"`
	ActionMaxConcurrent int           `env:"ACTION_MAX_CONCURRENT" envDefault:"4" desc:"actions running at once at most"`

	LeaderElect    string `env:"LEADER_ELECT" envDefault:"auto" desc:"leader election among replicas: true, false, or auto (on in-cluster, off with KUBECONFIG)"`
	LeaseName      string `env:"LEASE_NAME" envDefault:"podtype-pod-watcher" desc:"name of the coordination.k8s.io Lease"`
	LeaseNamespace string `env:"LEASE_NAMESPACE" desc:"namespace of the Lease; empty means POD_NAMESPACE, then the service account's namespace"`
	PodName        string `env:"POD_NAME" desc:"this replica's name (downward API), the leader identity; empty means the host name"`
	PodNamespace   string `env:"POD_NAMESPACE" desc:"this replica's namespace (downward API)"`
}

// Command is a command line given as a path or as a JSON array of path and arguments.
type Command []string

// UnmarshalText implements encoding.TextUnmarshaler, which env uses for this type.
func (c *Command) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		*c = nil
		return nil
	}
	if !strings.HasPrefix(s, "[") {
		*c = Command{s}
		return nil
	}
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		return fmt.Errorf("not a JSON array of strings: %w", err)
	}
	if len(args) == 0 || args[0] == "" {
		return errors.New("empty command")
	}
	*c = args
	return nil
}

// String shows the command as JSON, the unambiguous form.
func (c Command) String() string {
	b, _ := json.Marshal([]string(c))
	return string(b)
}

// Validate checks every field; errors name the variable and its value.
func (c Config) Validate() error {
	errs := []error{c.InfluxDB.Validate(), c.Kubernetes.Validate()}
	add := func(name, value, format string, args ...any) {
		errs = append(errs, config.Invalid(name, value, format, args...))
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			add(name, d.String(), "must be positive")
		}
	}
	if _, err := config.ParseLogLevel(c.LogLevel); err != nil {
		add("LOG_LEVEL", c.LogLevel, "%v", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("LOG_FORMAT", c.LogFormat, "must be json or text")
	}
	switch {
	case c.ModelURL == "" && c.ModelPath == "":
		add("MODEL_URL", "", "set MODEL_URL or MODEL_PATH")
	case c.ModelURL != "":
		if _, err := config.ParseHTTPURL(c.ModelURL); err != nil {
			add("MODEL_URL", c.ModelURL, "%v", err)
		}
	}
	if c.ActionWebhookURL != "" {
		if _, err := config.ParseHTTPURL(c.ActionWebhookURL); err != nil {
			add("ACTION_WEBHOOK_URL", c.ActionWebhookURL, "%v", err)
		}
	}
	positive("MODEL_REFRESH", c.ModelRefresh)
	positive("POLL_INTERVAL", c.PollInterval)
	positive("CLASSIFY_TIMEOUT", c.ClassifyTimeout)
	positive("ACTION_TIMEOUT", c.ActionTimeout)
	if c.FetchOverlap < 0 {
		add("FETCH_OVERLAP", c.FetchOverlap.String(), "must not be negative")
	}
	if c.FetchMaxBackoff < c.PollInterval {
		add("FETCH_MAX_BACKOFF", c.FetchMaxBackoff.String(), "must be at least POLL_INTERVAL (%v)", c.PollInterval)
	}
	if c.MinSamples < 0 {
		add("MIN_SAMPLES", strconv.Itoa(c.MinSamples), "must not be negative")
	}
	if math.IsNaN(c.MinConfidence) || c.MinConfidence < 0 || c.MinConfidence > 1 {
		add("MIN_CONFIDENCE", strconv.FormatFloat(c.MinConfidence, 'g', -1, 64), "must be in [0,1]")
	}
	if math.IsNaN(c.OpenSetMargin) || c.OpenSetMargin < 0 || c.OpenSetMargin >= 1 {
		add("OPEN_SET_MARGIN", strconv.FormatFloat(c.OpenSetMargin, 'g', -1, 64), "must be in [0,1)")
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"ANOMALY_RAISE_WINDOWS", c.AnomalyRaiseWindows}, {"ANOMALY_CLEAR_WINDOWS", c.AnomalyClearWindows},
		{"TOP_FEATURES", c.TopFeatures}, {"WORKERS", c.Workers}, {"ACTION_MAX_CONCURRENT", c.ActionMaxConcurrent},
	} {
		if f.v < 1 {
			add(f.name, strconv.Itoa(f.v), "must be at least 1")
		}
	}
	if _, err := c.leaderElect(false); err != nil {
		add("LEADER_ELECT", c.LeaderElect, "%v", err)
	}
	if c.LeaseName == "" {
		add("LEASE_NAME", c.LeaseName, "must not be empty")
	}
	return errors.Join(errs...)
}

// leaderElect resolves LEADER_ELECT; auto means on when running in a cluster.
func (c Config) leaderElect(inCluster bool) (bool, error) {
	switch strings.ToLower(c.LeaderElect) {
	case "auto":
		return inCluster && c.Kubernetes.Kubeconfig == "", nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("must be true, false or auto")
}

// NewLogger returns the logger the configuration asks for, writing to w.
func NewLogger(c Config, w interface{ Write([]byte) (int, error) }) (*slog.Logger, error) {
	level, err := config.ParseLogLevel(c.LogLevel)
	if err != nil {
		return nil, config.Invalid("LOG_LEVEL", c.LogLevel, "%v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
