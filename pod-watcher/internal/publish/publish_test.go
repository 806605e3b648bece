package publish

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var at = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestMergePatchGolden(t *testing.T) {
	tests := []struct {
		name    string
		changes Changes
	}{
		{"classification", Classification("mysql", 0.93456, "20260101T000000Z-0123456789ab", at)},
		{"unknown", Classification(TypeUnknown, 0.41, "v1", at)},
		{"unclassified", Unclassified("v1", at)},
		{"anomaly-open", Anomaly(true, 0.71234, []string{"cpu_cores_mean", "memory_usage_bytes_max"})},
		{"anomaly-closed", Anomaly(false, 0.45, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergePatch("uid-1", tt.changes)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got)+"\n" != string(want) {
				t.Errorf("patch\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestMergePatchRefusesForeignKeys(t *testing.T) {
	if _, err := mergePatch("u", Changes{"example.com/owner": ptr("x")}); err == nil {
		t.Fatal("patch of a foreign annotation was built")
	}
}

func TestParseRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		changes []Changes
		want    Record
		ok      bool
	}{
		{"classified", []Changes{Classification("nginx", 0.9, "v1", at)},
			Record{State: StateClassified, Type: "nginx", Confidence: 0.9, ModelVersion: "v1", ClassifiedAt: at}, true},
		{"anomalous", []Changes{Classification("nginx", 0.9, "v1", at), Anomaly(true, 0.7, []string{"a"})},
			Record{State: StateClassified, Type: "nginx", Confidence: 0.9, ModelVersion: "v1", ClassifiedAt: at, Anomalous: true, AnomalyScore: 0.7}, true},
		{"unclassified", []Changes{Unclassified("v1", at)},
			Record{State: StateUnclassified, ModelVersion: "v1", ClassifiedAt: at}, true},
		{"nothing", nil, Record{}, false},
		{"classified without type", []Changes{{AnnotationState: ptr(StateClassified)}}, Record{}, false},
		{"garbage", []Changes{{AnnotationState: ptr("maybe")}}, Record{}, false},
		{"bad numbers are zero", []Changes{Classification("nginx", 0.9, "v1", at), {AnnotationConfidence: ptr("high"), AnnotationClassifiedAt: ptr("yesterday")}},
			Record{State: StateClassified, Type: "nginx", ModelVersion: "v1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := map[string]string{"example.com/owner": "team"}
			for _, c := range tt.changes {
				for k, v := range c {
					if v == nil {
						delete(a, k)
					} else {
						a[k] = *v
					}
				}
			}
			got, ok := ParseRecord(a)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseRecord = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func newPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "db-0", UID: "uid-1",
		Annotations: map[string]string{"example.com/owner": "team", AnnotationAnomalyFeatures: "stale"},
	}}
}

func TestAnnotateKeepsForeignAnnotationsAndRetries(t *testing.T) {
	pod := newPod()
	client := fake.NewClientset(pod)
	failures := 0
	var patches []clienttesting.PatchAction
	client.PrependReactor("patch", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		patches = append(patches, a.(clienttesting.PatchAction))
		if failures < 2 {
			failures++
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, pod.Name, nil)
		}
		return false, nil, nil // on to the object tracker
	})
	p := New(client, record.NewFakeRecorder(1), slog.New(slog.DiscardHandler))
	p.backoff = wait.Backoff{Duration: time.Microsecond, Factor: 1, Steps: 5}
	ref := Pod{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "db-0"}, UID: "uid-1"}
	if err := p.Annotate(t.Context(), ref, Classification("mysql", 0.9, "v1", at)); err != nil {
		t.Fatal(err)
	}
	if len(patches) != 3 {
		t.Errorf("%d patch attempts, want 3 (two conflicts, one success)", len(patches))
	}
	for _, a := range patches {
		if a.GetPatchType() != types.MergePatchType {
			t.Errorf("patch type %s, want a merge patch", a.GetPatchType())
		}
	}
	got, err := client.CoreV1().Pods("shop").Get(t.Context(), "db-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"example.com/owner":    "team",
		AnnotationState:        StateClassified,
		AnnotationType:         "mysql",
		AnnotationConfidence:   "0.9000",
		AnnotationModelVersion: "v1",
		AnnotationClassifiedAt: "2026-03-04T05:06:07Z",
		AnnotationAnomaly:      "false",
	}
	if len(got.Annotations) != len(want) {
		t.Errorf("annotations %v, want %v", got.Annotations, want)
	}
	for k, v := range want {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
}

func TestAnnotateErrors(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"pod gone is not an error", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "db-0"), false},
		{"forbidden is not retried", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "db-0", nil), true},
		{"replaced pod", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "db-0", nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(newPod())
			calls := 0
			client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
				calls++
				return true, nil, tt.err
			})
			p := New(client, record.NewFakeRecorder(1), slog.New(slog.DiscardHandler))
			err := p.Annotate(t.Context(), Pod{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "db-0"}}, Anomaly(false, 0.1, nil))
			if (err != nil) != tt.wantErr || calls != 1 {
				t.Errorf("err %v after %d calls; want error %v after 1 call", err, calls, tt.wantErr)
			}
		})
	}
}

func TestAnnotateStopsWithContext(t *testing.T) {
	client := fake.NewClientset(newPod())
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewTooManyRequests("slow down", 1)
	})
	p := New(client, record.NewFakeRecorder(1), slog.New(slog.DiscardHandler))
	p.backoff = wait.Backoff{Duration: time.Hour, Steps: 10}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Annotate(ctx, Pod{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "db-0"}}, Anomaly(false, 0.1, nil)); err == nil {
		t.Fatal("no error after the context ended")
	}
}

func TestEvent(t *testing.T) {
	rec := record.NewFakeRecorder(1)
	p := New(fake.NewClientset(), rec, slog.New(slog.DiscardHandler))
	p.Event(Pod{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "db-0"}, UID: "u"},
		corev1.EventTypeWarning, ReasonAnomalyDetected, "mysql anomaly")
	if got, want := <-rec.Events, "Warning AnomalyDetected mysql anomaly"; got != want {
		t.Errorf("event %q, want %q", got, want)
	}
}
