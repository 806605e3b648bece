package cluster

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Label keys PodType reads, in order of preference.
const (
	LabelAppName = "app.kubernetes.io/name"
	LabelApp     = "app"
)

// Sources PodType reports.
const (
	SourceLabelAppName = "label:" + LabelAppName
	SourceLabelApp     = "label:" + LabelApp
	SourceImage        = "image"
)

// aliasGroup returns the names a workload type is also known by. This is a small fixed table of
// common spellings (chart names versus image names), not a general synonym service; extend it
// when a class is missed because of its spelling.
func aliasGroup(name string) []string {
	for _, g := range [][]string{
		{"postgres", "postgresql"}, // Docker official image vs. Bitnami chart/image
		{"mongo", "mongodb"},       // Docker official image vs. Bitnami chart/image
		{"httpd", "apache"},        // Docker official image vs. Bitnami chart/image
	} {
		for _, n := range g {
			if n == name {
				return g
			}
		}
	}
	return nil
}

// PodType returns the workload type of pod among classes, and where it came from. Candidates,
// in order: label app.kubernetes.io/name, label app, the repository name of the first
// container's image; each lower-cased, trimmed and matched against classes directly or through
// the alias table (postgresql -> postgres, mongodb -> mongo, ...). The first candidate that
// matches wins, so a pod labelled app=frontend running nginx is still "nginx". When none
// matches, ok is false and typ and source are those of the first candidate present (useful in
// logs), or empty when the pod has none. classes are matched case-insensitively and returned as
// given.
func PodType(pod *corev1.Pod, classes []string) (typ, source string, ok bool) {
	if pod == nil {
		return "", "", false
	}
	type candidate struct{ name, source string }
	var cands []candidate
	if v := pod.Labels[LabelAppName]; v != "" {
		cands = append(cands, candidate{v, SourceLabelAppName})
	}
	if v := pod.Labels[LabelApp]; v != "" {
		cands = append(cands, candidate{v, SourceLabelApp})
	}
	if len(pod.Spec.Containers) > 0 {
		if v := ImageRepoName(pod.Spec.Containers[0].Image); v != "" {
			cands = append(cands, candidate{v, SourceImage})
		}
	}
	for _, c := range cands {
		if class, found := matchClass(c.name, classes); found {
			return class, c.source, true
		}
	}
	if len(cands) == 0 {
		return "", "", false
	}
	return normaliseName(cands[0].name), cands[0].source, false
}

func normaliseName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func matchClass(name string, classes []string) (string, bool) {
	name = normaliseName(name)
	names := aliasGroup(name)
	if names == nil {
		names = []string{name}
	}
	for _, n := range names {
		for _, c := range classes {
			if normaliseName(c) == n {
				return c, true
			}
		}
	}
	return "", false
}
