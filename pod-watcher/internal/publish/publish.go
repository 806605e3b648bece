package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// FieldManager names the watcher in managedFields of every object it writes.
const FieldManager = "podtype-pod-watcher"

// Event reasons; messages are built by the caller.
const (
	ReasonClassified            = "Classified"
	ReasonClassificationTimeout = "ClassificationTimeout"
	ReasonAnomalyDetected       = "AnomalyDetected"
	ReasonAnomalyResolved       = "AnomalyResolved"
)

// ErrPodReplaced means the pod's name now belongs to another pod (different UID); the write was
// refused and the caller's pod is gone.
var ErrPodReplaced = errors.New("pod was replaced")

// Pod identifies the pod a write is about. Writes never need the cached object, so lister objects
// are never touched.
type Pod struct {
	types.NamespacedName
	UID types.UID
}

func (p Pod) ref() *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
}

// Publisher writes annotations with small merge patches and Events with one recorder.
type Publisher struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	backoff  wait.Backoff
	logger   *slog.Logger
}

// New returns a Publisher. The recorder should come from a broadcaster that sinks into the same
// cluster; its source component is what users see in `kubectl describe pod`.
func New(client kubernetes.Interface, recorder record.EventRecorder, logger *slog.Logger) *Publisher {
	return &Publisher{
		client:   client,
		recorder: recorder,
		// About 20 s of trying; a pod that stays unwritable that long gets its next change
		// written by the next state change or, after a restart, by re-deciding it.
		backoff: wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 7, Cap: 10 * time.Second},
		logger:  logger,
	}
}

// Annotate applies changes to the pod's annotations, touching no other key and no other field.
// Transient API errors (conflict, throttling, timeouts, unreachable server) are retried with
// backoff until ctx ends. A pod that is gone is not an error: its tracker is about to stop.
func (p *Publisher) Annotate(ctx context.Context, pod Pod, changes Changes) error {
	body, err := mergePatch(pod.UID, changes)
	if err != nil {
		return fmt.Errorf("pod %s: annotate: %w", pod.NamespacedName, err)
	}
	backoff := p.backoff
	for {
		_, err = p.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, body,
			metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			p.logger.Debug("pod gone before annotation", "pod", pod.NamespacedName)
			return nil
		case apierrors.IsInvalid(err):
			// The only field we send that can be invalid is the immutable uid.
			return fmt.Errorf("pod %s: annotate: %w: %w", pod.NamespacedName, ErrPodReplaced, err)
		case !retriable(err) || backoff.Steps <= 1:
			return fmt.Errorf("pod %s: annotate: %w", pod.NamespacedName, err)
		}
		d := backoff.Step()
		p.logger.Debug("retrying annotation", "pod", pod.NamespacedName, "in", d, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s: annotate: %w (last error: %w)", pod.NamespacedName, ctx.Err(), err)
		case <-time.After(d):
		}
	}
}

// Event records an Event on the pod. The recorder sends asynchronously and rate-limits per object.
func (p *Publisher) Event(pod Pod, eventType, reason, message string) {
	p.recorder.Event(pod.ref(), eventType, reason, message)
}

func retriable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsUnexpectedServerError(err) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) ||
		utilnet.IsProbableEOF(err) || errors.Is(err, context.DeadlineExceeded)
}
