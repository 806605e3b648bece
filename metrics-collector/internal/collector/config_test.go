package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/config"
)

func TestConfigDefaults(t *testing.T) {
	var cfg Config
	if err := config.Load(&cfg, map[string]string{}); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.TrainInterval != 0 || cfg.WindowSamples != 12 || cfg.WindowStep != 10*time.Second || cfg.TrainingRatio != 0.7 ||
		cfg.TrainingIterations != 5 || cfg.ForestThresholdQuantile != 0.99 || len(cfg.Classes) != 8 || cfg.HTTPAddr != ":8080" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestConfigDocumented(t *testing.T) {
	for _, v := range config.Describe(&Config{}) {
		if v.Description == "" {
			t.Errorf("%s has no desc tag", v.Name)
		}
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"TRAINING_RATIO": "1"}, "TRAINING_RATIO"},
		{map[string]string{"TRAINING_RATIO": "0"}, "TRAINING_RATIO"},
		{map[string]string{"TRAINING_RATIO": "NaN"}, "TRAINING_RATIO"},
		{map[string]string{"TRAINING_RATIO": "seventy"}, "TRAINING_RATIO"},
		{map[string]string{"TRAINING_ITERATIONS": "0"}, "TRAINING_ITERATIONS"},
		{map[string]string{"TRAINING_MAX_NUMBER": "-1"}, "TRAINING_MAX_NUMBER"},
		{map[string]string{"TRAIN_INTERVAL": "-1m"}, "TRAIN_INTERVAL"},
		{map[string]string{"TRAIN_INTERVAL": "hourly"}, "TRAIN_INTERVAL"},
		{map[string]string{"FETCH_WINDOW": "1m"}, "FETCH_WINDOW"}, // shorter than 12 x 10s
		{map[string]string{"WINDOW_SAMPLES": "2"}, "WINDOW_SAMPLES"},
		{map[string]string{"WINDOW_STEP": "0s"}, "WINDOW_STEP"},
		{map[string]string{"CLASSES": "mysql"}, "CLASSES"},
		{map[string]string{"CLASSES": "mysql,nginx,mysql"}, "CLASSES"},
		{map[string]string{"CLASSIFIER_ALGORITHM": "svm"}, "CLASSIFIER_ALGORITHM"},
		{map[string]string{"CLASSIFIER_TREES": "0"}, "CLASSIFIER_TREES"},
		{map[string]string{"FOREST_TREES": "0"}, "FOREST_TREES"},
		{map[string]string{"FOREST_SAMPLE_SIZE": "1"}, "FOREST_SAMPLE_SIZE"},
		{map[string]string{"FOREST_THRESHOLD_QUANTILE": "1.5"}, "FOREST_THRESHOLD_QUANTILE"},
		{map[string]string{"FAULT_MIN_OVERLAP": "0"}, "FAULT_MIN_OVERLAP"},
		{map[string]string{"PUBLISH_MIN_MACRO_F1": "2"}, "PUBLISH_MIN_MACRO_F1"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"SEED": "-3"}, "SEED"},
		{map[string]string{"INFLUXDB_URL": "ftp://x"}, "INFLUXDB_URL"},
		{map[string]string{"NAMESPACES": "Not_A_Namespace"}, "NAMESPACES"},
	}
	for _, tt := range tests {
		t.Run(tt.want+"="+firstValue(tt.env), func(t *testing.T) {
			var cfg Config
			err := config.Load(&cfg, tt.env)
			if err == nil {
				t.Fatalf("%v accepted", tt.env)
			}
			if !strings.Contains(err.Error(), tt.want+"=") {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func firstValue(m map[string]string) string {
	for _, v := range m {
		return v
	}
	return ""
}
