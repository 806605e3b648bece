// Command pod-watcher tells every new pod's workload type from its first metrics, arms the
// type's pretrained anomaly model at once, and reports types and anomalies as pod annotations,
// Kubernetes Events and Prometheus metrics.
//
// Usage:
//
//	pod-watcher        run (configured by environment variables)
//	pod-watcher env    list the environment variables with defaults
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podtype/podtype/shared/config"

	"github.com/podtype/podtype/pod-watcher/internal/app"
)

// Exit codes: 2 for usage and configuration errors, which retrying cannot fix.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && args[0] == "env":
		printEnv(stdout)
		return exitOK
	case len(args) > 0:
		fmt.Fprintf(stderr, "usage: pod-watcher [env]\n\n  (no command)  run; configured by environment variables\n  env           list them with defaults\n")
		if args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return exitOK
		}
		return exitUsage
	}

	var cfg app.Config
	if err := config.LoadEnv(&cfg); err != nil {
		fmt.Fprintf(stderr, "pod-watcher: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	logger, err := app.NewLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pod-watcher: %v\n", err)
		return exitUsage
	}
	// client-go logs through klog; send it to the same structured log.
	klog.SetSlogLogger(logger.With("component", "client-go"))
	logger.Info("pod-watcher starting", "config", config.Redacted(&cfg))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, logger); err != nil {
		logger.Error("pod-watcher failed", "err", err)
		return exitFailed
	}
	logger.Info("pod-watcher stopped")
	return exitOK
}

func printEnv(w io.Writer) { _ = config.WriteEnvTable(w, &app.Config{}) }
