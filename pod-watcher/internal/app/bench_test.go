package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/sim"

	"github.com/podtype/podtype/pod-watcher/internal/simfeed"
)

// Benchmark scenario: the model's window, the poll interval (= Telegraf's interval) and the
// steady-state intervals measured after the last classification.
const (
	benchStep    = 2 * time.Second
	benchSamples = 12
	benchSteady  = 5
	benchBudget  = 256 << 20
)

// BenchmarkWatcher runs the whole watcher in-process (informers, fetcher, one tracker per pod,
// publishing through a fake clientset) while N simulated pods start at once, and reports:
//
//	intervals_after_window  poll intervals from the moment every pod has its full window to
//	                        the moment the last one is classified (target <= 2)
//	s_to_all_classified     seconds from the pods' start to the last classification
//	s_to_all_annotated      ... to the last annotation patch
//	queries/interval        InfluxDB reads per poll interval (target: independent of N)
//	cpu_s/interval          process CPU per interval in the steady state (scoring every pod)
//	peak_rss_MB             peak RSS of the process while the watcher ran (target <= 256)
//	base_rss_MB             RSS before the watcher started: the fake API server's objects and
//	                        the simulator, which a real deployment does not carry
//
// Run it with -benchtime=1x: one iteration is one scenario of about a minute.
func BenchmarkWatcher(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			for b.Loop() {
				benchScenario(b, n)
			}
		})
	}
}

func benchScenario(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	// The fake clientset's watchers panic when more than DefaultChanSize events are pending;
	// 10,000 patches arrive faster than that.
	watch.DefaultChanSize = int32(4 * n)

	dir := b.TempDir()
	trainCfg := sim.DefaultConfig()
	trainCfg.Namespace, trainCfg.PodsPerType, trainCfg.Seed = "train", 6, 1
	bundle, err := simfeed.TrainBundle(ctx, trainCfg, 30*time.Minute, benchStep, benchSamples)
	if err != nil {
		b.Fatal(err)
	}
	modelPath := filepath.Join(dir, "model.json.gz")
	if err := model.WriteFile(modelPath, bundle); err != nil {
		b.Fatal(err)
	}

	simCfg := sim.DefaultConfig()
	simCfg.Namespace, simCfg.Seed = "bench", 2
	simCfg.Nodes = max(3, n/100)
	simCfg.PodsPerType = n / len(sim.Types())
	simCfg.Start = time.Now()
	cluster, err := sim.New(simCfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	client := fake.NewClientset()
	if err := cluster.Register(ctx, client); err != nil {
		b.Fatal(err)
	}
	// Writes are counted and accepted without the fake's object tracker, whose per-request
	// REST mapping and managed-fields bookkeeping cost more CPU than the whole watcher: the
	// benchmark measures the watcher, not client-go's fake API server.
	var patches, lastPatch atomic.Int64
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		patches.Add(1)
		lastPatch.Store(time.Now().UnixNano())
		return true, nil, nil
	})
	client.PrependReactor("create", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, a.(clienttesting.CreateAction).GetObject(), nil
	})
	// A real API server streams an informer's initial list (WatchListClient, on by default since
	// 1.35) or pages it (the reflector asks for 500 at a time); the fake ignores the limit and
	// copies every pod into one list, a transient of 10,000 pods that is the harness's, not the
	// watcher's. Serve the pages the reflector asks for.
	listed, err := client.CoreV1().Pods(simCfg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	client.PrependReactor("list", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		opts := a.(clienttesting.ListActionImpl).ListOptions
		if opts.Limit <= 0 {
			return false, nil, nil
		}
		from := 0
		if opts.Continue != "" {
			var err error
			if from, err = strconv.Atoi(opts.Continue); err != nil {
				return true, nil, fmt.Errorf("continue token %q: %w", opts.Continue, err)
			}
		}
		to := min(from+int(opts.Limit), len(listed.Items))
		page := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: listed.ResourceVersion}}
		for i := from; i < to; i++ {
			page.Items = append(page.Items, *listed.Items[i].DeepCopy())
		}
		if to < len(listed.Items) {
			page.Continue = strconv.Itoa(to)
		}
		return true, page, nil
	})
	// The fake also keeps a deep copy of every request; a real API server is not in our RSS.
	go func() {
		for ctx.Err() == nil {
			client.ClearActions()
			time.Sleep(time.Second)
		}
	}()

	pods := len(cluster.Pods())
	keep := benchSamples + 8
	feed := simfeed.NewFeed(cluster, keep)
	// The pods started when the simulation did; their data starts with the first scrape, and
	// every pod has its full window benchSamples-1 steps later.
	firstScrape := time.Now()
	feed.Scrape(firstScrape)
	go feed.Run(ctx, benchStep)
	windowsComplete := firstScrape.Add((benchSamples - 1) * benchStep)

	var cfg Config
	if err := config.Load(&cfg, map[string]string{
		"MODEL_PATH":    modelPath,
		"POLL_INTERVAL": benchStep.String(),
		// Decisions on the first window, which windowsComplete counts from; the default of two
		// windows adds one window of waiting and of buffered samples per pod.
		"MIN_SAMPLES":       strconv.Itoa(benchSamples),
		"FETCH_OVERLAP":     (2 * benchStep).String(),
		"FETCH_MAX_BACKOFF": time.Minute.String(),
		"LEADER_ELECT":      "false",
		"LISTEN_ADDR":       "127.0.0.1:0",
		"KUBECONFIG":        "/unused",
		"NAMESPACES":        simCfg.Namespace,
	}); err != nil {
		b.Fatal(err)
	}
	// What the process holds before the watcher starts (fake API objects, simulator, feed) is
	// not the watcher's: return freed memory to the OS, then take the baseline.
	debug.FreeOSMemory()
	baseRSS := procStatusKB(b, "VmRSS")
	baseMem := readMemory()
	// The watcher's budget: 256 MiB on top of that, with GOMEMLIMIT at 80% of it, the margin
	// a Deployment leaves below its memory limit. The limit is soft and the process-wide heap
	// (the baseline's included) would let GOGC grow far past it, so without the margin the
	// runtime fills the whole budget whatever the watcher needs; gc_cpu_s/interval shows what
	// collecting harder costs.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(baseRSS<<10 + benchBudget*8/10))
	resetPeakRSS(b)
	cpu0 := cpuTime()
	if os.Getenv("BENCH_TRACE_RSS") != "" {
		go func() {
			for ctx.Err() == nil {
				b.Logf("t=%4.0fs rss=%d MB", time.Since(firstScrape).Seconds(), procStatusKB(b, "VmRSS")/1024)
				time.Sleep(2 * time.Second)
			}
		}()
	}
	reg := prometheus.NewRegistry()
	done := make(chan error, 1)
	go func() {
		done <- RunWithOptions(ctx, cfg, slog.New(slog.DiscardHandler), Options{Registry: reg, Source: feed, Client: client})
	}()

	var allClassified time.Time
	for allClassified.IsZero() {
		select {
		case err := <-done:
			b.Fatalf("watcher ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if classified(b, reg) >= pods {
			allClassified = time.Now()
		}
		if time.Since(firstScrape) > 5*time.Minute {
			b.Fatalf("only %d of %d pods classified after 5 minutes", classified(b, reg), pods)
		}
	}
	// Steady state: every pod is scored every interval.
	q0, c0, g0 := feed.Queries(), cpuTime(), readMemory().gcCPU
	time.Sleep(benchSteady * benchStep)
	q1, c1, g1 := feed.Queries(), cpuTime(), readMemory().gcCPU
	goruntime.GC() // live heap, not garbage
	peakRSS := procStatusKB(b, "VmHWM")
	mem := readMemory()
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}

	b.ReportMetric(allClassified.Sub(windowsComplete).Seconds()/benchStep.Seconds(), "intervals_after_window")
	b.ReportMetric(allClassified.Sub(firstScrape).Seconds(), "s_to_all_classified")
	b.ReportMetric(time.Unix(0, lastPatch.Load()).Sub(firstScrape).Seconds(), "s_to_all_annotated")
	b.ReportMetric(float64(q1-q0)/benchSteady, "queries/interval")
	b.ReportMetric((c1-c0).Seconds()/benchSteady, "cpu_s/interval")
	b.ReportMetric((g1-g0)/benchSteady, "gc_cpu_s/interval")
	b.ReportMetric(float64(peakRSS)/1024, "peak_rss_MB")
	b.ReportMetric(float64(baseRSS)/1024, "base_rss_MB")
	b.ReportMetric(float64(peakRSS-baseRSS)/1024, "watcher_rss_MB")
	b.ReportMetric(float64(mem.heap-baseMem.heap)/(1<<20), "watcher_heap_MB")
	b.ReportMetric(float64(mem.stacks-baseMem.stacks)/(1<<20), "watcher_stacks_MB")
	b.Logf("%d pods: window complete +%.1f intervals -> all classified; %d queries in total; watcher CPU %.1fs; %d patches",
		pods, allClassified.Sub(windowsComplete).Seconds()/benchStep.Seconds(), feed.Queries(), (cpuTime() - cpu0).Seconds(), patches.Load())
}

// classified sums podwatcher_pods_classified_total over types.
func classified(tb testing.TB, reg *prometheus.Registry) int {
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "podwatcher_pods_classified_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return int(total)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusKB reads a "kB" line of /proc/self/status (VmRSS, VmHWM).
func procStatusKB(b *testing.B, key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", key, err)
			}
			return v
		}
	}
	b.Fatalf("no %s in /proc/self/status", key)
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux: clear_refs 5), so the
// peak excludes the model training before the scenario.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): peak_rss_MB includes the setup", err)
	}
}

// writeHeapProfile writes the live heap while the watcher runs (BENCH_HEAP_PROFILE=file).
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

type memory struct {
	heap, stacks uint64
	gcCPU        float64 // seconds
}

// readMemory returns the heap objects, goroutine stacks and GC CPU time (runtime/metrics).
func readMemory() memory {
	samples := []rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
	}
	rtmetrics.Read(samples)
	return memory{heap: samples[0].Value.Uint64(), stacks: samples[1].Value.Uint64(), gcCPU: samples[2].Value.Float64()}
}
