package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// requiredLabels must be present and non-empty on every image we ship.
func requiredLabels() []string { return []string{labelTitle, labelVersion, labelSource, labelCreated} }

// openFile is the tarball.Opener of a file.
func openFile(name string) (io.ReadCloser, error) { return os.Open(name) }

// verifyTarball checks an image tarball the way a deployment relies on it: one tagged image with
// consistent digests, a Linux platform, a numeric non-root user and group, the OCI labels, and an
// entrypoint that exists in the image as an executable root-owned file the user cannot modify.
// It returns a one-line summary.
func verifyTarball(file string) (string, error) {
	mf, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return openFile(file) })
	if err != nil {
		return "", fmt.Errorf("manifest.json: %w", err)
	}
	if len(mf) != 1 || len(mf[0].RepoTags) == 0 {
		return "", fmt.Errorf("manifest.json: want one image with a tag, got %d images (tags %v)", len(mf), repoTags(mf))
	}
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return "", fmt.Errorf("read image: %w", err)
	}
	if err := validate.Image(img); err != nil {
		return "", fmt.Errorf("digests: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if err := checkConfig(cf); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if err := checkEntrypoint(img, cf.Config.Entrypoint[0]); err != nil {
		return "", err
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("image id: %w", err)
	}
	return fmt.Sprintf("ok %s %s/%s user=%s entrypoint=%s version=%s id=%s", strings.Join(mf[0].RepoTags, ","),
		cf.OS, cf.Architecture, cf.Config.User, cf.Config.Entrypoint[0], cf.Config.Labels[labelVersion], id), nil
}

func repoTags(mf tarball.Manifest) []string {
	var tags []string
	for _, d := range mf {
		tags = append(tags, d.RepoTags...)
	}
	return tags
}

// checkConfig checks platform, user, entrypoint form and labels.
func checkConfig(cf *v1.ConfigFile) error {
	var errs []error
	if cf.OS != "linux" || cf.Architecture == "" {
		errs = append(errs, fmt.Errorf("platform %q/%q: want linux/<arch>", cf.OS, cf.Architecture))
	}
	m := userRE.FindStringSubmatch(cf.Config.User)
	switch {
	case m == nil:
		errs = append(errs, fmt.Errorf("user %q: want numeric uid:gid (runAsNonRoot cannot check a name)", cf.Config.User))
	case strings.TrimLeft(m[1], "0") == "" || (m[2] != "" && strings.TrimLeft(m[2], "0") == ""):
		errs = append(errs, fmt.Errorf("user %q: root uid or gid", cf.Config.User))
	}
	if len(cf.Config.Entrypoint) == 0 || !path.IsAbs(cf.Config.Entrypoint[0]) {
		errs = append(errs, fmt.Errorf("entrypoint %q: want an absolute path", cf.Config.Entrypoint))
	}
	for _, l := range requiredLabels() {
		if cf.Config.Labels[l] == "" {
			errs = append(errs, fmt.Errorf("label %s: missing", l))
		}
	}
	return errors.Join(errs...)
}

// checkEntrypoint looks the entrypoint up in the flattened file system.
func checkEntrypoint(img v1.Image, entry string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	want := strings.TrimPrefix(entry, "/")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("entrypoint %s: not in the image", entry)
		}
		if err != nil {
			return fmt.Errorf("read layers: %w", err)
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want {
			continue
		}
		switch {
		case h.Typeflag != tar.TypeReg:
			return fmt.Errorf("entrypoint %s: not a regular file (type %c)", entry, h.Typeflag)
		case h.Mode&0o111 == 0:
			return fmt.Errorf("entrypoint %s: mode %o is not executable", entry, h.Mode)
		case h.Uid != 0 || h.Mode&0o022 != 0:
			return fmt.Errorf("entrypoint %s: owner %d mode %o lets the container change its own binary", entry, h.Uid, h.Mode)
		}
		return nil
	}
}
