package cluster

import (
	"cmp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ImageIndex answers "how large is this container image" from the nodes' status.images, which
// the kubelet fills with every image's names (tags and repo digests) and size.
type ImageIndex struct {
	byNode map[string]map[string]int64 // node -> image key -> size
	any    map[string]int64            // image key -> size on the first node (by name) having it
}

// NewImageIndex indexes the images of nodes.
func NewImageIndex(nodes []corev1.Node) *ImageIndex {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b corev1.Node) int { return cmp.Compare(a.Name, b.Name) })
	idx := &ImageIndex{byNode: make(map[string]map[string]int64), any: make(map[string]int64)}
	for _, n := range sorted {
		m := make(map[string]int64)
		for _, img := range n.Status.Images {
			if img.SizeBytes <= 0 {
				continue
			}
			for _, name := range img.Names {
				for _, k := range imageKeys(name) {
					m[k] = img.SizeBytes
					if _, seen := idx.any[k]; !seen {
						idx.any[k] = img.SizeBytes
					}
				}
			}
		}
		idx.byNode[n.Name] = m
	}
	return idx
}

// SizeOf returns the size of a container's image: image is the pod spec's image reference,
// imageID the container status's (a repo digest such as docker.io/library/nginx@sha256:...,
// possibly with a docker-pullable:// prefix; may be empty). The digest (exact content) is tried
// first, then the normalised tag name (nginx:1.25 is docker.io/library/nginx:1.25), which can
// name different content on different nodes; each on the pod's node first, then on any node.
// ok is false when no node lists the image. A nil index knows nothing.
func (x *ImageIndex) SizeOf(nodeName, image, imageID string) (size int64, ok bool) {
	if x == nil {
		return 0, false
	}
	var keys []string
	for _, ref := range []string{imageID, image} {
		if d := digestKey(ref); d != "" {
			keys = append(keys, d)
		}
	}
	if k := tagKey(image); k != "" {
		keys = append(keys, k)
	}
	for _, k := range keys {
		for _, m := range []map[string]int64{x.byNode[nodeName], x.any} {
			if s, found := m[k]; found {
				return s, true
			}
		}
	}
	return 0, false
}

// imageKeys returns the keys an image name is found by: its digest and its normalised tag.
func imageKeys(name string) []string {
	var out []string
	if d := digestKey(name); d != "" {
		out = append(out, d)
	}
	if t := tagKey(name); t != "" {
		out = append(out, t)
	}
	return out
}

// digestKey returns "sha256:<hex>" for a reference with a digest. The repository is left out on
// purpose: the same manifest digest is the same content whichever registry name it was pulled by.
func digestKey(ref string) string {
	ref = trimScheme(ref)
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return strings.ToLower(ref[i+1:])
	}
	if strings.HasPrefix(ref, "sha256:") {
		return strings.ToLower(ref) // a bare image ID
	}
	return ""
}

// tagKey returns the fully qualified "domain/path:tag" of a reference without digest (tag latest
// when none is given), or "" for a digest-only reference.
func tagKey(ref string) string {
	ref = trimScheme(ref)
	if ref == "" || strings.HasPrefix(ref, "sha256:") {
		return ""
	}
	name, hasDigest := ref, false
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		name, hasDigest = ref[:i], true
	}
	repo, tag := splitTag(name)
	if tag == "" {
		if hasDigest {
			return ""
		}
		tag = "latest"
	}
	return normaliseRepo(repo) + ":" + tag
}

// splitTag splits "repo:tag"; a colon before the last slash belongs to a registry port.
func splitTag(name string) (repo, tag string) {
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return name, ""
	}
	return name[:i], name[i+1:]
}

// normaliseRepo applies Docker's defaults: docker.io when the first component is not a registry
// host, library/ for official images.
func normaliseRepo(repo string) string {
	repo = strings.ToLower(repo)
	first, rest, found := strings.Cut(repo, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		first, rest = "docker.io", repo
	}
	if first == "index.docker.io" || first == "registry-1.docker.io" {
		first = "docker.io"
	}
	if first == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return first + "/" + rest
}

func trimScheme(ref string) string {
	ref = strings.TrimSpace(ref)
	if i := strings.Index(ref, "://"); i >= 0 { // docker-pullable://, docker://
		ref = ref[i+3:]
	}
	return ref
}

// ImageRepoName returns the last path component of an image's repository, lower case, without
// registry, tag or digest: "docker.io/bitnami/mysql:8.0@sha256:..." is "mysql",
// "registry:5000/team/app" is "app".
func ImageRepoName(image string) string {
	ref := trimScheme(image)
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	repo, _ := splitTag(ref)
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		repo = repo[i+1:]
	}
	return strings.ToLower(repo)
}
