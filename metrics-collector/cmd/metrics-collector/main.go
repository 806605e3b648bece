// Command metrics-collector trains the pod-type classifier and the per-type anomaly models from
// Telegraf's pod metrics in InfluxDB and the Kubernetes inventory, writes validation reports and
// publishes the model bundle for the pod-watchers.
//
// Usage:
//
//	metrics-collector [train] [--from-csv FILE]   train once (TRAIN_INTERVAL=0) or every TRAIN_INTERVAL
//	metrics-collector serve                       serve the bundle at MODEL_PATH over HTTP
//	metrics-collector export [--out FILE]         write the feature dataset as CSV
//	metrics-collector env                         list the environment variables
//
// All settings come from environment variables (see `metrics-collector env`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podtype/podtype/metrics-collector/internal/collector"
	"github.com/podtype/podtype/shared/config"
)

// Exit codes: 2 for usage and configuration errors, which retrying cannot fix.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "train"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("metrics-collector "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var fromCSV, out string
	switch cmd {
	case "train":
		fs.StringVar(&fromCSV, "from-csv", "", "train from a CSV file written by `export` instead of InfluxDB and Kubernetes")
	case "export":
		fs.StringVar(&out, "out", "-", "CSV output file; - is stdout")
	case "serve":
	case "env":
		printEnv(stdout)
		return exitOK
	case "help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "metrics-collector: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "metrics-collector %s: unexpected arguments %q\n", cmd, fs.Args())
		return exitUsage
	}

	var cfg collector.Config
	if err := config.LoadEnv(&cfg); err != nil {
		fmt.Fprintf(stderr, "metrics-collector: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	level, _ := config.ParseLogLevel(cfg.LogLevel) // validated by LoadEnv
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(logger)
	logger.Info("metrics-collector starting", "command", cmd, "config", config.Redacted(&cfg))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The terminal table goes to stdout, except when stdout carries the CSV export.
	c := collector.New(cfg, collector.Options{Logger: logger, Stdout: stdout})
	var err error
	switch {
	case cmd == "serve":
		err = c.Serve(ctx)
	case cmd == "export":
		err = export(ctx, c, out, stdout)
	case fromCSV != "":
		_, err = c.TrainFromCSV(ctx, fromCSV)
	default:
		err = c.Run(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("stopped", "command", cmd, "reason", context.Cause(ctx))
			return exitFailed
		}
		logger.Error("failed", "command", cmd, "err", err)
		return exitFailed
	}
	return exitOK
}

func export(ctx context.Context, c *collector.Collector, path string, stdout io.Writer) (err error) {
	if path == "-" {
		return c.Export(ctx, stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return c.Export(ctx, f)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: metrics-collector [command] [flags]

commands:
  train [--from-csv FILE]  train once (TRAIN_INTERVAL=0) or every TRAIN_INTERVAL while serving HTTP (default)
  serve                    serve the bundle at MODEL_PATH: /model, /healthz, /readyz, /metrics
  export [--out FILE]      write the feature dataset (one row per pod window) as CSV
  env                      list the environment variables with defaults
`)
}

func printEnv(w io.Writer) { _ = config.WriteEnvTable(w, &collector.Config{}) }
