//go:build integration

package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/stacktest"
	"github.com/podtype/podtype/shared/telemetry"
)

// TestReaderAgainstInfluxDB writes line protocol shaped exactly like Telegraf's kubernetes and
// docker inputs to the stack's InfluxDB 1.8 (as Telegraf's write user) and reads it back through
// telemetry.Reader with the read-only user the services use.
func TestReaderAgainstInfluxDB(t *testing.T) {
	st := stacktest.Load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const step = 10 * time.Second
	const samples = 8
	ns := stacktest.UniqueName("telemetry-it")
	base := time.Now().Add(-time.Hour).Truncate(step)
	fx := newTelegrafFixture(ns, base, step, samples)

	w := influxWriter{url: st.InfluxURL, db: st.InfluxDatabase, user: st.WriteUser, password: st.WritePassword}
	t.Cleanup(func() {
		// The database is shared with the stack's Telegraf and other tests: leave nothing behind.
		admin := influxWriter{url: st.InfluxURL, db: st.InfluxDatabase, user: st.AdminUser, password: st.AdminPassword}
		for _, where := range []string{
			fmt.Sprintf(`"namespace" = '%s' OR "namespace" = '%s-other'`, ns, ns),
			fmt.Sprintf(`"io.kubernetes.pod.namespace" = '%s'`, ns),
		} {
			if err := admin.influxQL(context.Background(), "DROP SERIES WHERE "+where); err != nil {
				t.Errorf("clean up: %v", err)
			}
		}
	})
	if err := w.write(ctx, fx.lines.String()); err != nil {
		t.Fatal(err)
	}

	r, err := telemetry.NewReader(config.InfluxDB{
		URL: st.InfluxURL, Database: st.InfluxDatabase, RetentionPolicy: "autogen",
		Username: st.InfluxUser, Password: config.Secret(st.InfluxPassword), Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	podA := types.NamespacedName{Namespace: ns, Name: "pod-a"}
	podB := types.NamespacedName{Namespace: ns, Name: "pod-b"}
	queries := []struct {
		name string
		q    telemetry.Query
		opts []telemetry.ReaderOption
	}{
		{"by namespace", telemetry.Query{Namespaces: []string{ns}}, nil},
		{"pods named in Flux", telemetry.Query{Pods: []types.NamespacedName{podA, podB}}, nil},
		{"pods filtered in Go", telemetry.Query{Namespaces: []string{ns}, Pods: []types.NamespacedName{podA, podB}}, []telemetry.ReaderOption{telemetry.WithMaxPodFilter(1)}},
	}
	for _, qq := range queries {
		t.Run(qq.name, func(t *testing.T) {
			r, err := telemetry.NewReader(config.InfluxDB{
				URL: st.InfluxURL, Database: st.InfluxDatabase, RetentionPolicy: "autogen",
				Username: st.InfluxUser, Password: config.Secret(st.InfluxPassword), Timeout: 30 * time.Second,
			}, qq.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			q := qq.q
			q.Start, q.Stop = base, base.Add(samples*step)
			began := time.Now()
			got, err := r.Series(ctx, q, step)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("one query, %d pods, %v", len(got), time.Since(began))
			if r.Queries() != 1 {
				t.Errorf("%d queries, want 1", r.Queries())
			}
			if len(got) != 2 || got[podA] == nil || got[podB] == nil {
				t.Fatalf("series for %v, want exactly %s and %s (not the other namespace's pod)", keys(got), podA, podB)
			}
			fx.check(t, got[podA], got[podB])
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		bad, err := telemetry.NewReader(config.InfluxDB{
			URL: st.InfluxURL, Database: st.InfluxDatabase, RetentionPolicy: "autogen",
			Username: st.InfluxUser, Password: "wrong", Timeout: 30 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		err = bad.Read(ctx, telemetry.Query{Start: base, Stop: base.Add(step), Namespaces: []string{ns}}, func(telemetry.Point) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "INFLUXDB_PASSWORD") {
			t.Fatalf("query with a wrong password: err = %v, want a hint at the credentials", err)
		}
	})
}

func keys(m map[types.NamespacedName]*telemetry.Series) []types.NamespacedName {
	var out []types.NamespacedName
	for k := range m {
		out = append(out, k)
	}
	return out
}

// telegrafFixture is a known workload written the way Telegraf writes it, with the values the
// telemetry.Reader must compute from it.
type telegrafFixture struct {
	lines strings.Builder
	times []time.Time // sample times, jittered within each step
}

const (
	appCores, sidecarCores = 0.2, 0.1
	resetSample            = 5 // app's CPU counter restarts from 0 before this sample
	rxPerSecond            = 1000.0
	blkReadPerSecond       = 4096.0
	faultsPerSecond        = 8.0 // per container
)

func newTelegrafFixture(ns string, base time.Time, step time.Duration, samples int) *telegrafFixture {
	fx := &telegrafFixture{}
	for i := range samples {
		// Telegraf's collection jitter, up to 3 s into the interval; multiples of 1/4 s keep the
		// cumulative values below integral, as Telegraf's are.
		fx.times = append(fx.times, base.Add(time.Duration(i)*step+time.Duration(i*750%3000)*time.Millisecond))
	}
	p := func(format string, args ...any) { fmt.Fprintf(&fx.lines, format+"\n", args...) }
	for i, ts := range fx.times {
		el := ts.Sub(base).Seconds() + 1
		appCPU := appCores * 1e9 * el
		if i >= resetSample {
			appCPU = appCores / 2 * 1e9 * ts.Sub(fx.times[resetSample-1]).Seconds()
			if i > resetSample {
				appCPU = appCores/2*1e9*fx.times[resetSample].Sub(fx.times[resetSample-1]).Seconds() + appCores*1e9*ts.Sub(fx.times[resetSample]).Seconds()
			}
		}
		containers := []struct {
			name, image    string
			cpu, nanocores float64
			mem            int64
		}{
			{"app", "nginx:1.25", appCPU, 150e6, 100 << 20},
			{"sidecar", "envoyproxy/envoy:v1.30", sidecarCores * 1e9 * el, 50e6, 10 << 20},
		}
		for _, c := range containers {
			p("kubernetes_pod_container,container_name=%s,host=telegraf-0,image=%s,namespace=%s,node_name=node-1,pod_name=pod-a,version=1.25 "+
				"cpu_usage_nanocores=%di,cpu_usage_core_nanoseconds=%di,memory_usage_bytes=%di,memory_working_set_bytes=%di,memory_rss_bytes=%di,"+
				"memory_page_faults=%di,memory_major_page_faults=0i,rootfs_available_bytes=1000000i,rootfs_capacity_bytes=2000000i,rootfs_used_bytes=4096i,"+
				"logsfs_available_bytes=1000000i,logsfs_capacity_bytes=2000000i,logsfs_used_bytes=0i %d",
				c.name, c.image, ns, int64(c.nanocores), int64(math.Round(c.cpu)), c.mem, c.mem/2, c.mem/4, int64(math.Round(faultsPerSecond*el)), ts.UnixNano())
		}
		p("kubernetes_pod_network,host=telegraf-0,namespace=%s,node_name=node-1,pod_name=pod-a rx_bytes=%di,rx_errors=0i,tx_bytes=0i,tx_errors=0i %d",
			ns, int64(math.Round(rxPerSecond*el)), ts.UnixNano())
		for _, v := range []struct {
			name string
			used int64
		}{{"data", 1 << 20}, {"kube-api-access-x1", 4096}} {
			p("kubernetes_pod_volume,host=telegraf-0,namespace=%s,node_name=node-1,pod_name=pod-a,volume_name=%s available_bytes=1i,capacity_bytes=2i,used_bytes=%di %d",
				ns, v.name, v.used, ts.UnixNano())
		}
		// inputs.docker: one row per block device plus the "total" row summing them; only the
		// total may be counted. Docker labels (dots and all) are tags.
		read := blkReadPerSecond * el
		for _, dev := range []struct {
			name string
			read float64
		}{{"8:0", read / 4}, {"8:16", read * 3 / 4}, {"total", read}} {
			p(`docker_container_blkio,container_image=nginx,container_name=k8s_app_pod-b_%s_uid_0,container_status=running,container_version=1.25,`+
				`device=%s,engine_host=node-2,io.kubernetes.container.name=app,io.kubernetes.pod.name=pod-b,io.kubernetes.pod.namespace=%s,server_version=24.0.5 `+
				`container_id="0123abc",io_service_bytes_recursive_read=%di,io_service_bytes_recursive_write=0i,io_serviced_recursive_read=7i %d`,
				ns, dev.name, ns, int64(math.Round(dev.read)), ts.UnixNano())
		}
		p("kubernetes_pod_container,container_name=app,namespace=%s-other,node_name=node-1,pod_name=pod-a memory_usage_bytes=1i %d", ns, ts.UnixNano())
	}
	return fx
}

func (fx *telegrafFixture) check(t *testing.T, a, b *telemetry.Series) {
	t.Helper()
	n := len(fx.times)
	if a.Len() != n || a.Node != "node-1" || !a.Start.Equal(fx.times[0].Truncate(a.Step)) {
		t.Fatalf("pod-a: %d points from %v on %s, want %d from %v on node-1", a.Len(), a.Start, a.Node, n, fx.times[0])
	}
	approx := func(what string, i int, got, want float64) {
		if math.IsNaN(got) || math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s[%d] = %v, want %v", what, i, got, want)
		}
	}
	for i := range n {
		switch {
		case i == 0:
			// No earlier sample in InfluxDB: the CPU counter has no rate, nanocores stand in.
			approx("cpu", i, a.Values[telemetry.CPUCores][i], 0.150+0.050)
			if !math.IsNaN(a.Values[telemetry.NetworkRxBytesPerSecond][i]) {
				t.Errorf("rx[0] = %v, want NaN (first sample)", a.Values[telemetry.NetworkRxBytesPerSecond][i])
			}
		case i == resetSample:
			approx("cpu (app counter reset)", i, a.Values[telemetry.CPUCores][i], appCores/2+sidecarCores)
		default:
			approx("cpu", i, a.Values[telemetry.CPUCores][i], appCores+sidecarCores)
		}
		if i > 0 {
			approx("rx", i, a.Values[telemetry.NetworkRxBytesPerSecond][i], rxPerSecond)
			approx("page faults", i, a.Values[telemetry.PageFaultsPerSecond][i], 2*faultsPerSecond)
			approx("blkio read", i, b.Values[telemetry.BlkioReadBytesPerSecond][i], blkReadPerSecond)
		}
		approx("memory", i, a.Values[telemetry.MemoryUsageBytes][i], 110<<20)
		approx("working set", i, a.Values[telemetry.MemoryWorkingSetBytes][i], 55<<20)
		approx("volumes", i, a.Values[telemetry.VolumeUsedBytes][i], 1<<20+4096)
		approx("logsfs", i, a.Values[telemetry.LogsfsUsedBytes][i], 0)
	}
	if b.Node != "node-2" {
		t.Errorf("pod-b node %q, want node-2 (Docker engine_host)", b.Node)
	}
}

// influxWriter posts line protocol to InfluxDB 1.8's /write, as Telegraf's influxdb output does.
type influxWriter struct{ url, db, user, password string }

func (w influxWriter) write(ctx context.Context, lines string) error {
	u := w.url + "/write?" + url.Values{"db": {w.db}, "rp": {"autogen"}, "precision": {"ns"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(lines))
	if err != nil {
		return err
	}
	req.SetBasicAuth(w.user, w.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("influxdb write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("influxdb write: %s %s", resp.Status, resp.Header.Get("X-Influxdb-Error"))
	}
	return nil
}

// influxQL runs one InfluxQL statement through 1.8's /query (ns values are DNS labels, so the
// quoting in the callers' statements is safe).
func (w influxWriter) influxQL(ctx context.Context, stmt string) error {
	form := url.Values{"db": {w.db}, "q": {stmt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(w.user, w.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("influxql %q: %w", stmt, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		return fmt.Errorf("influxql %q: %s %s", stmt, resp.Status, body)
	}
	return nil
}
