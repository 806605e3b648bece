package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Image is one container image of the catalog as a pod spec names it and as a node reports it.
type Image struct {
	// Spec is the reference as written in pod specs, often short ("mysql:8.4", "bitnami/redis:7.2").
	Spec string
	// SizeBytes is the size the runtime reports in node.status.images (compressed layers, like containerd).
	SizeBytes int64
}

// Repository returns the fully qualified repository, e.g. "docker.io/library/mysql" for "mysql:8.4".
func (i Image) Repository() string {
	repo, _ := splitImage(i.Spec)
	return repo
}

// Ref returns the fully qualified tag reference, e.g. "docker.io/library/mysql:8.4".
func (i Image) Ref() string {
	repo, tag := splitImage(i.Spec)
	return repo + ":" + tag
}

// Digest returns the image's deterministic fake manifest digest, "sha256:<64 hex>".
func (i Image) Digest() string {
	sum := sha256.Sum256([]byte("cluster-sim image " + i.Ref()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DigestRef returns the digest reference the runtime reports as imageID, e.g. "docker.io/library/mysql@sha256:...".
func (i Image) DigestRef() string { return i.Repository() + "@" + i.Digest() }

// NormalizeImage qualifies a reference the way container runtimes do: "nginx" -> "docker.io/library/nginx:latest",
// "bitnami/mysql:8.0" -> "docker.io/bitnami/mysql:8.0". Digest references are returned qualified and unchanged
// otherwise.
func NormalizeImage(ref string) string {
	if at := strings.Index(ref, "@"); at >= 0 {
		repo, _ := splitImage(ref[:at])
		return repo + ref[at:]
	}
	repo, tag := splitImage(ref)
	return repo + ":" + tag
}

// splitImage returns the qualified repository and the tag ("latest" when absent) of a tag reference.
func splitImage(ref string) (repo, tag string) {
	repo, tag = ref, "latest"
	// A colon after the last slash separates the tag; one before it belongs to a registry port.
	if c := strings.LastIndex(ref, ":"); c > strings.LastIndex(ref, "/") {
		repo, tag = ref[:c], ref[c+1:]
	}
	first, _, found := strings.Cut(repo, "/")
	switch {
	case !found:
		repo = "docker.io/library/" + repo
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		repo = "docker.io/" + repo
	}
	return repo, tag
}
