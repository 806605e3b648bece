// Package publish writes what the watcher learns about a pod back to the cluster: a small set of
// annotations under one prefix (the durable record) and Kubernetes Events (the announcements).
//
// Annotations are the record: after a restart the watcher reads them back with ParseRecord and
// does not announce again what a pod already carries, so Events are never duplicated.
package publish

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Prefix is the one annotation prefix the watcher owns; it never writes any other key.
const Prefix = "podtype.io/"

// Annotation keys, all under Prefix.
const (
	AnnotationState           = Prefix + "state"            // StateClassified or StateUnclassified
	AnnotationType            = Prefix + "type"             // a model class or TypeUnknown
	AnnotationConfidence      = Prefix + "confidence"       // classifier probability of the chosen class
	AnnotationModelVersion    = Prefix + "model-version"    // bundle version that decided the type
	AnnotationClassifiedAt    = Prefix + "classified-at"    // RFC 3339, when the type was decided
	AnnotationAnomaly         = Prefix + "anomaly"          // "true" while an anomaly episode is open
	AnnotationAnomalyScore    = Prefix + "anomaly-score"    // isolation forest score at the last state change
	AnnotationAnomalyFeatures = Prefix + "anomaly-features" // top deviating features of the open episode
)

// Values of AnnotationState.
const (
	StateClassified   = "classified"
	StateUnclassified = "unclassified"
)

// TypeUnknown is the type of a pod whose behaviour matches none of the model's classes well.
const TypeUnknown = "unknown"

// Record is what the annotations say about a pod.
type Record struct {
	State        string
	Type         string
	Confidence   float64
	ModelVersion string
	ClassifiedAt time.Time
	Anomalous    bool
	AnomalyScore float64
}

// ParseRecord reads the watcher's annotations. ok is false when the pod carries no (usable)
// state, which means it was never decided; malformed optional values are left at zero, since a
// hand-edited annotation must not stop the pod from being watched.
func ParseRecord(annotations map[string]string) (rec Record, ok bool) {
	rec.State = annotations[AnnotationState]
	if rec.State != StateClassified && rec.State != StateUnclassified {
		return Record{}, false
	}
	rec.Type = annotations[AnnotationType]
	rec.ModelVersion = annotations[AnnotationModelVersion]
	rec.Confidence, _ = strconv.ParseFloat(annotations[AnnotationConfidence], 64)
	rec.ClassifiedAt, _ = time.Parse(time.RFC3339, annotations[AnnotationClassifiedAt])
	rec.Anomalous = annotations[AnnotationAnomaly] == "true"
	rec.AnomalyScore, _ = strconv.ParseFloat(annotations[AnnotationAnomalyScore], 64)
	if rec.State == StateClassified && rec.Type == "" {
		return Record{}, false
	}
	return rec, true
}

// Changes is a set of annotation updates: a value sets a key, nil removes it.
type Changes map[string]*string

// Classification returns the annotations of a decided type. The anomaly keys are reset, since a
// new type means a new forest and nothing said about the old one holds.
func Classification(typ string, confidence float64, modelVersion string, at time.Time) Changes {
	return Changes{
		AnnotationState:           ptr(StateClassified),
		AnnotationType:            ptr(typ),
		AnnotationConfidence:      ptr(formatFloat(confidence)),
		AnnotationModelVersion:    ptr(modelVersion),
		AnnotationClassifiedAt:    ptr(at.UTC().Format(time.RFC3339)),
		AnnotationAnomaly:         ptr("false"),
		AnnotationAnomalyScore:    nil,
		AnnotationAnomalyFeatures: nil,
	}
}

// Unclassified returns the annotations of a pod that timed out waiting for data.
func Unclassified(modelVersion string, at time.Time) Changes {
	return Changes{
		AnnotationState:           ptr(StateUnclassified),
		AnnotationType:            nil,
		AnnotationConfidence:      nil,
		AnnotationModelVersion:    ptr(modelVersion),
		AnnotationClassifiedAt:    ptr(at.UTC().Format(time.RFC3339)),
		AnnotationAnomaly:         nil,
		AnnotationAnomalyScore:    nil,
		AnnotationAnomalyFeatures: nil,
	}
}

// Anomaly returns the annotations of an anomaly state change. features is only kept while the
// episode is open.
func Anomaly(open bool, score float64, features []string) Changes {
	c := Changes{
		AnnotationAnomaly:      ptr(strconv.FormatBool(open)),
		AnnotationAnomalyScore: ptr(formatFloat(score)),
	}
	if open {
		c[AnnotationAnomalyFeatures] = ptr(strings.Join(features, ","))
	} else {
		c[AnnotationAnomalyFeatures] = nil
	}
	return c
}

// mergePatch is the JSON merge patch (RFC 7386) body for changes. It carries the pod's UID so the
// API server rejects the patch (uid is immutable) when the name now belongs to a new pod, e.g. a
// recreated StatefulSet replica, instead of labelling it with its predecessor's behaviour.
func mergePatch(uid types.UID, changes Changes) ([]byte, error) {
	for k := range changes {
		if !strings.HasPrefix(k, Prefix) {
			return nil, fmt.Errorf("annotation %q: outside the watcher's prefix %q", k, Prefix)
		}
	}
	type metadata struct {
		UID         types.UID `json:"uid,omitempty"`
		Annotations Changes   `json:"annotations"`
	}
	return json.Marshal(struct {
		Metadata metadata `json:"metadata"`
	}{metadata{UID: uid, Annotations: changes}})
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func ptr(s string) *string { return &s }
