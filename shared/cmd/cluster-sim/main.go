// Command cluster-sim runs a simulated Kubernetes cluster against a real kube-apiserver: it registers
// nodes (with their images) and pods, and serves fake kubelet endpoints that Telegraf's
// inputs.kubernetes scrapes, so the metrics of known workload types (with injected, labelled faults)
// reach InfluxDB through the real pipeline.
//
// Every flag can also be set by the environment variable shown in -help; a flag given on the command
// line wins over the environment.
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
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podtype/podtype/shared/sim"
)

func main() { os.Exit(run()) }

func run() int {
	opts, err := parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-sim:", err)
		return 2
	}
	logger := newLogger(os.Stderr, opts.logLevel, opts.logJSON)
	klog.SetSlogLogger(logger.With("source", "client-go"))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sim.Run(ctx, opts.cfg, logger); err != nil {
		logger.Error("cluster-sim failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level slog.Level, asJSON bool) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
