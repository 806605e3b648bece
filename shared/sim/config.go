package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxNodes bounds the node count by the address plan (one /16 of pod addresses per node).
const maxNodes = 250

// Config configures a simulated cluster. Start from DefaultConfig.
type Config struct {
	// Seed makes everything reproducible: names, images, behaviour, random faults and churn.
	Seed uint64
	// Namespace holds all simulated pods.
	Namespace string
	// NodePrefix prefixes node names: "<prefix>node-<n>", n from 1.
	NodePrefix string
	// Nodes is the number of simulated nodes; pods are spread evenly.
	Nodes int
	// Types are the workload types to run; empty means all (Types()).
	Types []string
	// PodsPerType is the number of pods of each type created at start.
	PodsPerType int

	// Start is the simulation start; zero means the time New is called.
	Start time.Time
	// Step is the model's time step. Values do not depend on how often Advance is called, only on Step.
	Step time.Duration
	// Tick is how often Start advances the cluster and refreshes what the kubelets serve.
	Tick time.Duration
	// DayLength compresses the daily load cycle so short runs see its variation.
	DayLength time.Duration

	// AppLabelShare is the share of pods labelled only app=<type> instead of app.kubernetes.io/name=<type>.
	AppLabelShare float64
	// UnlabelledShare is the share of pods with no type label at all (type only from the image).
	UnlabelledShare float64
	// PartialMemoryShare is the share of pods whose runtime reports memory usage only (no working set,
	// RSS or page faults).
	PartialMemoryShare float64

	// KubeletToken, if set, is the bearer token the fake kubelets require.
	KubeletToken string
	// LabelsFile, if set, is the JSON-lines file fault labels are appended to.
	LabelsFile string
	// Faults are scheduled faults.
	Faults []FaultSpec
	// FaultRate is the rate of random faults per pod per hour (0: none).
	FaultRate float64
	// FaultKinds are the kinds random faults are drawn from; empty means all.
	FaultKinds []FaultKind
	// FaultMinDuration and FaultMaxDuration bound the duration of random faults.
	FaultMinDuration time.Duration
	FaultMaxDuration time.Duration
	// ChurnRate is how many pods per minute are deleted and replaced by a new pod of a random type.
	ChurnRate float64
	// Workers bounds the concurrent API requests while registering or deleting pods.
	Workers int

	// The fields below are used by Run only.

	// Kubeconfig is the kubeconfig path; empty means client-go's default loading rules.
	Kubeconfig string
	// KubeletAddr is the listen address of the fake kubelets.
	KubeletAddr string
	// ClientQPS and ClientBurst are client-go's rate limits; registering thousands of pods needs more
	// than client-go's defaults (5 and 10).
	ClientQPS   float32
	ClientBurst int
	// Duration stops Run after this long; 0 runs until the context ends.
	Duration time.Duration
	// Cleanup deletes the simulator's pods and nodes when Run ends.
	Cleanup bool
}

// DefaultConfig returns the defaults: 3 nodes, 4 pods of each type, a one-hour day.
func DefaultConfig() Config {
	return Config{
		Seed:               1,
		Namespace:          "sim",
		NodePrefix:         "sim-",
		Nodes:              3,
		PodsPerType:        4,
		Step:               time.Second,
		Tick:               time.Second,
		DayLength:          time.Hour,
		AppLabelShare:      0.1,
		UnlabelledShare:    0.05,
		PartialMemoryShare: 0.1,
		FaultMinDuration:   2 * time.Minute,
		FaultMaxDuration:   8 * time.Minute,
		Workers:            8,
		KubeletAddr:        "127.0.0.1:10255",
		ClientQPS:          200,
		ClientBurst:        400,
	}
}

// Validate reports every invalid field, naming it and its value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("sim config: %s=%v: %s", field, value, why))
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		bad("Namespace", fmt.Sprintf("%q", c.Namespace), strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(c.NodePrefix + "node-1"); len(msgs) > 0 {
		bad("NodePrefix", fmt.Sprintf("%q", c.NodePrefix), strings.Join(msgs, "; "))
	}
	if c.Nodes < 1 || c.Nodes > maxNodes {
		bad("Nodes", c.Nodes, fmt.Sprintf("must be in [1, %d]", maxNodes))
	}
	for i, t := range c.Types {
		if !slices.Contains(Types(), t) {
			bad("Types", t, fmt.Sprintf("unknown workload type (known: %v)", Types()))
		} else if slices.Index(c.Types, t) != i {
			bad("Types", t, "given twice")
		}
	}
	if c.PodsPerType < 0 {
		bad("PodsPerType", c.PodsPerType, "must not be negative")
	}
	if c.Step <= 0 {
		bad("Step", c.Step, "must be positive")
	}
	if c.Tick <= 0 {
		bad("Tick", c.Tick, "must be positive")
	}
	if c.DayLength < time.Minute {
		bad("DayLength", c.DayLength, "must be at least 1m")
	}
	for name, v := range map[string]float64{
		"AppLabelShare": c.AppLabelShare, "UnlabelledShare": c.UnlabelledShare, "PartialMemoryShare": c.PartialMemoryShare,
	} {
		if !(v >= 0 && v <= 1) {
			bad(name, v, "must be in [0, 1]")
		}
	}
	if c.AppLabelShare+c.UnlabelledShare > 1 {
		bad("AppLabelShare+UnlabelledShare", c.AppLabelShare+c.UnlabelledShare, "must not exceed 1")
	}
	for _, f := range c.Faults {
		if err := f.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("sim config: Faults: %w", err))
		}
	}
	if !(c.FaultRate >= 0) || math.IsInf(c.FaultRate, 0) {
		bad("FaultRate", c.FaultRate, "must be a finite number >= 0")
	}
	for _, k := range c.FaultKinds {
		if !slices.Contains(FaultKinds(), k) {
			bad("FaultKinds", k, fmt.Sprintf("unknown fault (known: %v)", FaultKinds()))
		}
	}
	if c.FaultMinDuration <= 0 || c.FaultMaxDuration < c.FaultMinDuration {
		bad("FaultMinDuration/FaultMaxDuration", fmt.Sprintf("%s/%s", c.FaultMinDuration, c.FaultMaxDuration),
			"need 0 < min <= max")
	}
	if !(c.ChurnRate >= 0) || math.IsInf(c.ChurnRate, 0) {
		bad("ChurnRate", c.ChurnRate, "must be a finite number >= 0")
	}
	if c.Workers < 1 {
		bad("Workers", c.Workers, "must be at least 1")
	}
	if c.Duration < 0 {
		bad("Duration", c.Duration, "must not be negative")
	}
	if c.ClientQPS <= 0 || c.ClientBurst < 1 {
		bad("ClientQPS/ClientBurst", fmt.Sprintf("%v/%d", c.ClientQPS, c.ClientBurst), "must be positive")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// types returns the configured workload types, all when none are configured.
func (c *Config) types() []string {
	if len(c.Types) == 0 {
		return Types()
	}
	return c.Types
}

// faultKinds returns the kinds random faults are drawn from.
func (c *Config) faultKinds() []FaultKind {
	if len(c.FaultKinds) == 0 {
		return FaultKinds()
	}
	return c.FaultKinds
}
