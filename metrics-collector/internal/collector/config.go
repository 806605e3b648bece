package collector

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/model"
)

// Config is the metrics-collector's configuration, read from the environment by config.Load.
// The thesis's settings are kept under clearer names: classifier list -> CLASSES, training
// interval -> TRAIN_INTERVAL, data.metrics.fetch.interval.seconds -> FETCH_WINDOW,
// training.ratio/iterations/maxNumber -> TRAINING_RATIO/_ITERATIONS/_MAX_NUMBER.
type Config struct {
	InfluxDB   config.InfluxDB
	Kubernetes config.Kubernetes

	ModelPath string `env:"MODEL_PATH" envDefault:"/var/lib/podtype/model.json.gz" desc:"where the model bundle is written (atomically; the previous one is kept as MODEL_PATH.prev) and served from"`
	ReportDir string `env:"REPORT_DIR" envDefault:"reports" desc:"directory for report.json and report.html; empty disables the files"`

	Classes       config.List   `env:"CLASSES" envDefault:"mysql,postgres,redis,memcached,nginx,httpd,mongo,rabbitmq" desc:"comma-separated pod types the classifier learns; pods of other types are left out and counted"`
	TrainInterval time.Duration `env:"TRAIN_INTERVAL" envDefault:"0s" desc:"time between trainings while serving the bundle over HTTP; 0 trains once and exits"`
	FetchWindow   time.Duration `env:"FETCH_WINDOW" envDefault:"6h" desc:"how far back telemetry is read for one training"`
	WindowSamples int           `env:"WINDOW_SAMPLES" envDefault:"12" desc:"grid points per feature window; the bundle carries it so the pod-watcher uses the same window"`
	WindowStep    time.Duration `env:"WINDOW_STEP" envDefault:"10s" desc:"grid step of a feature window; set it to Telegraf's collection interval"`

	TrainingRatio      float64 `env:"TRAINING_RATIO" envDefault:"0.7" desc:"share of each type's pods used for training in a validation iteration; the other pods validate"`
	TrainingIterations int     `env:"TRAINING_ITERATIONS" envDefault:"5" desc:"validation iterations (new random pod split each); confusion matrices are summed"`
	TrainingMaxNumber  int     `env:"TRAINING_MAX_NUMBER" envDefault:"0" desc:"learning curve: train with 1..N pods per type; 0 means all training pods"`
	Seed               uint64  `env:"SEED" envDefault:"1" desc:"seed of every random choice (splits, trees, forests); same data and seed give the same bundle"`

	ClassifierAlgorithm string `env:"CLASSIFIER_ALGORITHM" envDefault:"random-trees" desc:"pod-type classifier: random-trees, bagged-id3 or id3"`
	ClassifierTrees     int    `env:"CLASSIFIER_TREES" envDefault:"50" desc:"trees in the classifier ensemble (id3 always grows one)"`

	ForestTrees             int     `env:"FOREST_TREES" envDefault:"100" desc:"trees per isolation forest (one forest per pod type)"`
	ForestSampleSize        int     `env:"FOREST_SAMPLE_SIZE" envDefault:"256" desc:"windows sampled per isolation tree"`
	ForestThresholdQuantile float64 `env:"FOREST_THRESHOLD_QUANTILE" envDefault:"0.99" desc:"anomaly threshold = this quantile of the scores a type's training windows get from forests fit without their pod, 5 pod groups in turn"`

	FaultLabelsFile   string  `env:"FAULT_LABELS_FILE" desc:"optional JSON-lines ground truth {namespace,pod,fault,start,end}; overlapping windows are never trained on and measure anomaly recall"`
	FaultMinOverlap   float64 `env:"FAULT_MIN_OVERLAP" envDefault:"0.5" desc:"a window is a fault window when labelled faults cover at least this share of it; windows covered less, and the window after a fault, are left out"`
	PublishMinMacroF1 float64 `env:"PUBLISH_MIN_MACRO_F1" envDefault:"0" desc:"do not replace the served bundle when validation macro-F1 is below this (0 publishes always)"`

	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080" desc:"listen address for /model, /healthz, /readyz and /metrics (train with TRAIN_INTERVAL > 0, serve)"`
	LogLevel string `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error"`
}

// Validate checks the service's own values and both shared groups; every error names the
// variable and its value.
func (c *Config) Validate() error {
	errs := []error{c.InfluxDB.Validate(), c.Kubernetes.Validate(), c.validateOwn()}
	return errors.Join(errs...)
}

func (c *Config) validateOwn() error {
	var errs []error
	bad := func(name, value, format string, args ...any) {
		errs = append(errs, config.Invalid(name, value, format, args...))
	}
	ratio := func(name string, v float64, lo, hi float64, open bool) {
		s := strconv.FormatFloat(v, 'g', -1, 64)
		switch {
		case math.IsNaN(v):
			bad(name, s, "not a number")
		case open && !(v > lo && v < hi):
			bad(name, s, "must be between %g and %g, exclusive", lo, hi)
		case !open && !(v >= lo && v <= hi):
			bad(name, s, "must be between %g and %g", lo, hi)
		}
	}
	if c.ModelPath == "" {
		bad("MODEL_PATH", c.ModelPath, "must not be empty")
	}
	if len(c.Classes) < 2 {
		bad("CLASSES", c.Classes.String(), "need at least two pod types to classify")
	}
	seen := map[string]bool{}
	for _, cl := range c.Classes {
		if seen[cl] {
			bad("CLASSES", c.Classes.String(), "type %q is listed twice", cl)
		}
		seen[cl] = true
	}
	if c.TrainInterval < 0 {
		bad("TRAIN_INTERVAL", c.TrainInterval.String(), "must be >= 0 (0 trains once)")
	}
	if c.WindowSamples < 3 {
		bad("WINDOW_SAMPLES", strconv.Itoa(c.WindowSamples), "must be at least 3 (spread and slope need three points)")
	}
	if c.WindowStep <= 0 {
		bad("WINDOW_STEP", c.WindowStep.String(), "must be positive")
	}
	if c.WindowStep > 0 && c.WindowSamples > 0 {
		if win := time.Duration(c.WindowSamples) * c.WindowStep; c.FetchWindow < win {
			bad("FETCH_WINDOW", c.FetchWindow.String(), "must cover at least one feature window (WINDOW_SAMPLES x WINDOW_STEP = %s)", win)
		}
	}
	ratio("TRAINING_RATIO", c.TrainingRatio, 0, 1, true)
	if c.TrainingIterations < 1 {
		bad("TRAINING_ITERATIONS", strconv.Itoa(c.TrainingIterations), "must be at least 1")
	}
	if c.TrainingMaxNumber < 0 {
		bad("TRAINING_MAX_NUMBER", strconv.Itoa(c.TrainingMaxNumber), "must be >= 0 (0 = all training pods)")
	}
	switch c.ClassifierAlgorithm {
	case model.AlgorithmRandomTrees, model.AlgorithmBaggedID3, model.AlgorithmID3:
	default:
		bad("CLASSIFIER_ALGORITHM", c.ClassifierAlgorithm, "want %s, %s or %s", model.AlgorithmRandomTrees, model.AlgorithmBaggedID3, model.AlgorithmID3)
	}
	if c.ClassifierTrees < 1 {
		bad("CLASSIFIER_TREES", strconv.Itoa(c.ClassifierTrees), "must be at least 1")
	}
	if c.ForestTrees < 1 {
		bad("FOREST_TREES", strconv.Itoa(c.ForestTrees), "must be at least 1")
	}
	if c.ForestSampleSize < 2 {
		bad("FOREST_SAMPLE_SIZE", strconv.Itoa(c.ForestSampleSize), "must be at least 2")
	}
	ratio("FOREST_THRESHOLD_QUANTILE", c.ForestThresholdQuantile, 0, 1, true)
	ratio("FAULT_MIN_OVERLAP", c.FaultMinOverlap, 0, 1, false)
	if c.FaultMinOverlap == 0 {
		bad("FAULT_MIN_OVERLAP", "0", "must be above 0")
	}
	ratio("PUBLISH_MIN_MACRO_F1", c.PublishMinMacroF1, 0, 1, false)
	if c.HTTPAddr == "" {
		bad("HTTP_ADDR", c.HTTPAddr, "must not be empty")
	}
	if _, err := config.ParseLogLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL", c.LogLevel, "%v", err)
	}
	return errors.Join(errs...)
}
