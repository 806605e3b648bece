package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/podtype/podtype/shared/sim"
)

// options is the parsed command line.
type options struct {
	cfg      sim.Config
	logLevel slog.Level
	logJSON  bool
}

// parse reads flags, then fills every flag not given on the command line from its environment variable.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	cfg := sim.DefaultConfig()
	var (
		types, faults, faultKinds, tokenFile, logLevel, logFormat string
		opts                                                      options
	)
	fs := flag.NewFlagSet("cluster-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := map[string]string{} // flag name -> environment variable
	str := func(p *string, name, envName, def, usage string) {
		fs.StringVar(p, name, def, usage+" ($"+envName+")")
		env[name] = envName
	}
	str(&cfg.Kubeconfig, "kubeconfig", "KUBECONFIG", "", "kubeconfig path; empty: client-go's default loading rules")
	str(&cfg.KubeletAddr, "kubelet-addr", "SIM_KUBELET_ADDR", cfg.KubeletAddr, "listen address of the fake kubelets")
	str(&cfg.Namespace, "namespace", "SIM_NAMESPACE", cfg.Namespace, "namespace of the simulated pods")
	str(&cfg.NodePrefix, "node-prefix", "SIM_NODE_PREFIX", cfg.NodePrefix, "node name prefix: <prefix>node-<n>")
	str(&types, "types", "SIM_TYPES", "", "comma-separated workload types; empty: all of "+strings.Join(sim.Types(), ","))
	str(&tokenFile, "kubelet-token-file", "SIM_KUBELET_TOKEN_FILE", "", "file with the bearer token the fake kubelets require; empty: no auth")
	str(&cfg.LabelsFile, "labels-file", "SIM_LABELS_FILE", "", "JSON-lines file the fault labels are appended to")
	str(&faults, "faults", "SIM_FAULTS", "", "scheduled faults: pod=<name|type-n>,fault=<kind>,start=<dur>[,duration=<dur>][;...]")
	str(&faultKinds, "fault-kinds", "SIM_FAULT_KINDS", "", "comma-separated kinds of random faults; empty: all")
	str(&logLevel, "log-level", "SIM_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&logFormat, "log-format", "SIM_LOG_FORMAT", "text", "text or json")

	intv := func(p *int, name, envName string, usage string) {
		fs.IntVar(p, name, *p, usage+" ($"+envName+")")
		env[name] = envName
	}
	intv(&cfg.Nodes, "nodes", "SIM_NODES", "number of simulated nodes")
	intv(&cfg.PodsPerType, "pods-per-type", "SIM_PODS_PER_TYPE", "pods of each type created at start")
	intv(&cfg.Workers, "workers", "SIM_WORKERS", "concurrent API requests while registering pods")
	intv(&cfg.ClientBurst, "kube-api-burst", "SIM_KUBE_API_BURST", "client-go burst")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of everything random ($SIM_SEED)")
	env["seed"] = "SIM_SEED"

	dur := func(p *time.Duration, name, envName, usage string) {
		fs.DurationVar(p, name, *p, usage+" ($"+envName+")")
		env[name] = envName
	}
	dur(&cfg.DayLength, "day-length", "SIM_DAY_LENGTH", "length of the simulated daily load cycle")
	dur(&cfg.Tick, "tick", "SIM_TICK", "how often the metrics the kubelets serve are refreshed")
	dur(&cfg.Step, "step", "SIM_STEP", "time step of the pod models")
	dur(&cfg.Duration, "duration", "SIM_DURATION", "stop after this long; 0: until SIGINT/SIGTERM")
	dur(&cfg.FaultMinDuration, "fault-min-duration", "SIM_FAULT_MIN_DURATION", "shortest random fault")
	dur(&cfg.FaultMaxDuration, "fault-max-duration", "SIM_FAULT_MAX_DURATION", "longest random fault")

	float := func(p *float64, name, envName, usage string) {
		fs.Float64Var(p, name, *p, usage+" ($"+envName+")")
		env[name] = envName
	}
	float(&cfg.FaultRate, "fault-rate", "SIM_FAULT_RATE", "random faults per pod per hour")
	float(&cfg.ChurnRate, "churn-rate", "SIM_CHURN_RATE", "pods replaced per minute")
	float(&cfg.AppLabelShare, "app-label-share", "SIM_APP_LABEL_SHARE", "share of pods labelled app=<type> only")
	float(&cfg.UnlabelledShare, "unlabelled-share", "SIM_UNLABELLED_SHARE", "share of pods without a type label")
	float(&cfg.PartialMemoryShare, "partial-memory-share", "SIM_PARTIAL_MEMORY_SHARE", "share of pods without working set, RSS and page faults")
	qps := float64(cfg.ClientQPS)
	float(&qps, "kube-api-qps", "SIM_KUBE_API_QPS", "client-go queries per second")
	fs.BoolVar(&cfg.Cleanup, "cleanup", false, "delete the simulator's pods and nodes on exit ($SIM_CLEANUP)")
	env["cleanup"] = "SIM_CLEANUP"

	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		envName := env[f.Name]
		if v := getenv(envName); v != "" && !given[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("$%s=%q: %w", envName, v, err)
			}
		}
	})
	if envErr != nil {
		return opts, envErr
	}

	cfg.ClientQPS = float32(qps)
	cfg.Types = splitList(types)
	for _, k := range splitList(faultKinds) {
		kind, err := sim.ParseFaultKind(k)
		if err != nil {
			return opts, fmt.Errorf("-fault-kinds: %w", err)
		}
		cfg.FaultKinds = append(cfg.FaultKinds, kind)
	}
	var err error
	if cfg.Faults, err = sim.ParseFaults(faults); err != nil {
		return opts, fmt.Errorf("-faults: %w", err)
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return opts, fmt.Errorf("-kubelet-token-file: %w", err)
		}
		if cfg.KubeletToken = strings.TrimSpace(string(b)); cfg.KubeletToken == "" {
			return opts, fmt.Errorf("-kubelet-token-file %s: file is empty", tokenFile)
		}
	}
	if err := opts.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return opts, fmt.Errorf("-log-level=%q: %w", logLevel, err)
	}
	switch logFormat {
	case "text":
	case "json":
		opts.logJSON = true
	default:
		return opts, fmt.Errorf("-log-format=%q: want text or json", logFormat)
	}
	if err := cfg.Validate(); err != nil {
		return opts, err
	}
	opts.cfg = cfg
	return opts, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
