package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podtype/podtype/shared/httpserve"
)

// Start runs the cluster in the background until ctx ends: every Config.Tick it advances to the wall
// clock and, once registered, writes container restarts to the API (SyncStatus); with Config.ChurnRate it
// also replaces pods. Wait blocks until the background work has stopped.
func (c *Cluster) Start(ctx context.Context) error {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.started {
		return errors.New("start: cluster already started")
	}
	c.started = true
	c.wg.Go(func() { c.tickLoop(ctx) })
	if c.cfg.ChurnRate > 0 {
		c.wg.Go(func() { c.churnLoop(ctx) })
	}
	return nil
}

// Wait blocks until the work Start began has stopped.
func (c *Cluster) Wait() { c.wg.Wait() }

func (c *Cluster) tickLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		c.Advance(time.Now())
		if err := c.SyncStatus(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cannot write pod status", "err", err)
		}
		t.Reset(time.Until(nextTick(time.Now(), c.cfg.Tick, c.cfg.Step)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// nextTick returns the first tick time after now: ticks fall on multiples of tick since the Unix
// epoch plus three quarters of a step, a quarter step after the model's steps (see firstStep), so
// a tick never races the step it is meant to serve.
func nextTick(now time.Time, tick, step time.Duration) time.Time {
	return gridAfter(now, tick, step*3/4%tick)
}

// churnLoop deletes a random pod and creates one of a random type, at exponential intervals averaging
// one per 1/ChurnRate minutes. The choices come from the seeded churn stream.
func (c *Cluster) churnLoop(ctx context.Context) {
	for {
		c.mu.Lock()
		wait := time.Duration(c.churn.ExpFloat64() / c.cfg.ChurnRate * float64(time.Minute))
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := c.churnOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("pod churn failed", "err", err)
		}
	}
}

func (c *Cluster) churnOnce(ctx context.Context) error {
	c.mu.Lock()
	names := make([]PodInfo, 0, len(c.pods))
	for _, p := range c.pods {
		names = append(names, PodInfo{Namespace: p.namespace, Name: p.name})
	}
	slices.SortFunc(names, func(a, b PodInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	types := c.cfg.types()
	typ := types[c.churn.IntN(len(types))]
	var victim *PodInfo
	if len(names) > 0 {
		victim = &names[c.churn.IntN(len(names))]
	}
	c.mu.Unlock()
	if victim != nil {
		if err := c.DeletePod(ctx, victim.Namespace, victim.Name); err != nil {
			return fmt.Errorf("churn: %w", err)
		}
	}
	added, err := c.AddPods(ctx, typ, 1)
	if err != nil {
		return fmt.Errorf("churn: %w", err)
	}
	attrs := []any{"added", added[0].Name, "node", added[0].Node}
	if victim != nil {
		attrs = append(attrs, "deleted", victim.Name)
	}
	c.log.Info("pod churn", attrs...)
	return nil
}

// Run runs a simulated cluster against a real apiserver until ctx ends or cfg.Duration has passed: the fake
// kubelets listen on cfg.KubeletAddr, nodes and pods are registered through cfg.Kubeconfig, and the
// cluster advances every cfg.Tick. With cfg.Cleanup its pods and nodes are deleted at the end.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := New(cfg, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()

	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	// The kubelets must outlive the simulation (Telegraf scrapes until the cluster stops), so
	// they serve under their own context, cancelled once the cluster has stopped.
	srvCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	listening := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- httpserve.Serve(srvCtx, cfg.KubeletAddr, c.Handler(), logger, listening) }()
	var addr net.Addr
	select {
	case addr = <-listening:
	case serr := <-served:
		return fmt.Errorf("kubelets: %w", serr)
	}
	logger.Info("fake kubelets listening", "addr", addr.String(), "urls", c.NodeURLs("http://"+addr.String()))

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := c.Start(runCtx); err != nil {
		return err
	}
	logger.Info("registering", "namespace", cfg.Namespace, "nodes", len(c.Nodes()), "pods", len(c.Pods()))
	err = c.Register(runCtx, client)
	switch {
	case err == nil:
		logger.Info("simulating", "namespace", cfg.Namespace, "pods", len(c.Pods()), "tick", cfg.Tick, "day_length", cfg.DayLength)
		select {
		case <-runCtx.Done():
		case serr := <-served:
			// Serve only returns early on an error: the cluster cannot be scraped any more.
			err, served = fmt.Errorf("kubelets: %w", serr), nil
		}
	case runCtx.Err() != nil:
		logger.Warn("stopped while registering", "err", err)
		err = nil
	}
	stop()
	c.Wait()
	stopServing()
	if served != nil {
		if serr := <-served; serr != nil {
			err = errors.Join(err, fmt.Errorf("kubelets: %w", serr))
		}
	}
	if cfg.Cleanup {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		logger.Info("cleaning up", "pods", len(c.Pods()), "nodes", len(c.Nodes()))
		err = errors.Join(err, c.Cleanup(cleanCtx))
	}
	logger.Info("stopped")
	return err
}

// newClient builds a clientset from cfg.Kubeconfig (client-go's loading rules when empty) with
// cfg.ClientQPS and cfg.ClientBurst.
func newClient(cfg Config) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = cfg.Kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", cfg.Kubeconfig, err)
	}
	rc.QPS, rc.Burst = cfg.ClientQPS, cfg.ClientBurst
	rc.UserAgent = FieldManager
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: client: %w", cfg.Kubeconfig, err)
	}
	return client, nil
}
