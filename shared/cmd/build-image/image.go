package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// binDir is where the binary lands; /usr/local/bin is on the default PATH and matches the Dockerfiles.
const binDir = "/usr/local/bin"

// OCI annotation keys (image-spec annotations.md); registries, Docker and Grafana/Trivy read them.
const (
	labelTitle       = "org.opencontainers.image.title"
	labelDescription = "org.opencontainers.image.description"
	labelVersion     = "org.opencontainers.image.version"
	labelRevision    = "org.opencontainers.image.revision"
	labelSource      = "org.opencontainers.image.source"
	labelCreated     = "org.opencontainers.image.created"
	labelLicenses    = "org.opencontainers.image.licenses"
)

// spec describes one image: a single static binary on an empty base, like distroless/static.
type spec struct {
	Name        string            // binary file name and image title, e.g. "pod-watcher"
	Binary      string            // path of the static binary on this machine
	Ref         string            // tag recorded in the tarball, e.g. "ghcr.io/podtype/pod-watcher:dev"
	User        string            // numeric "uid[:gid]", never root
	Version     string            // org.opencontainers.image.version
	Revision    string            // org.opencontainers.image.revision (VCS commit), optional
	Source      string            // org.opencontainers.image.source (repository URL)
	Description string            // org.opencontainers.image.description, optional
	Licenses    string            // org.opencontainers.image.licenses (SPDX), optional
	Labels      map[string]string // extra labels; may override the ones above
	Ports       []string          // "8080" or "8080/tcp"
	Env         []string          // "KEY=value", added after PATH
	Cmd         []string          // default arguments after the entrypoint, optional
	Created     time.Time         // image and file time; fixed (SOURCE_DATE_EPOCH) for reproducible tarballs
	Arch        string            // GOARCH of the image; empty = read from the binary's ELF header
	CABundle    string            // optional PEM bundle copied to /etc/ssl/certs/ca-certificates.crt
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	userRE = regexp.MustCompile(`^([0-9]+)(?::([0-9]+))?$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// entrypoint is where the binary sits inside the image.
func (s *spec) entrypoint() string { return path.Join(binDir, s.Name) }

// ids parses User; validate has checked it.
func (s *spec) ids() (uid, gid int) {
	m := userRE.FindStringSubmatch(s.User)
	uid, _ = strconv.Atoi(m[1])
	gid = uid
	if m[2] != "" {
		gid, _ = strconv.Atoi(m[2])
	}
	return uid, gid
}

// validate reports the first bad field by flag name and value.
func (s *spec) validate() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("--name %q: want lower-case letters, digits, '.', '_', '-'", s.Name)
	}
	if s.Binary == "" {
		return errors.New("--binary: required")
	}
	if _, err := name.NewTag(s.Ref, name.StrictValidation); err != nil {
		return fmt.Errorf("--tag %q: want registry/repository:tag: %w", s.Ref, err)
	}
	m := userRE.FindStringSubmatch(s.User)
	if m == nil {
		return fmt.Errorf("--user %q: want numeric uid[:gid] (names need /etc/passwd lookups at run time)", s.User)
	}
	for _, id := range m[1:] {
		if id == "" {
			continue
		}
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: %w", s.User, err)
		}
		if n == 0 {
			return fmt.Errorf("--user %q: uid and gid 0 are root; the services run as non-root (e.g. 65532:65532)", s.User)
		}
	}
	if s.Version == "" {
		return errors.New("--version: required (it becomes org.opencontainers.image.version)")
	}
	if s.Source == "" {
		return errors.New("--source: required (it becomes org.opencontainers.image.source)")
	}
	for k := range s.Labels {
		if k == "" {
			return errors.New("--label: empty key")
		}
	}
	for _, p := range s.Ports {
		if _, err := portKey(p); err != nil {
			return err
		}
	}
	for _, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envRE.MatchString(k) {
			return fmt.Errorf("--env %q: want NAME=value", e)
		}
	}
	return nil
}

// portKey turns "8080" or "8080/tcp" into the config's "8080/tcp".
func portKey(p string) (string, error) {
	num, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--port %q: want 1-65535 with optional /tcp, /udp or /sctp", p)
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("--port %q: protocol %q: want tcp, udp or sctp", p, proto)
	}
	return strconv.Itoa(n) + "/" + proto, nil
}

// goarch maps an ELF machine to GOARCH for the image platform, so an arm64 binary is never labelled amd64.
func goarch(f *elf.File) (string, bool) {
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", true
	case elf.EM_AARCH64:
		return "arm64", true
	case elf.EM_386:
		return "386", true
	case elf.EM_ARM:
		return "arm", true
	case elf.EM_PPC64:
		if f.Data == elf.ELFDATA2LSB {
			return "ppc64le", true
		}
		return "ppc64", true
	case elf.EM_S390:
		return "s390x", true
	case elf.EM_RISCV:
		return "riscv64", true
	}
	return "", false
}

// inspectBinary checks that data is a static Linux ELF executable and returns its GOARCH ("" when unknown).
// A dynamically linked binary (cgo on) would fail at start in an image without a libc.
func inspectBinary(data []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable (build with GOOS=linux): %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("ELF type %s is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			return "", fmt.Errorf("dynamically linked (interpreter %s): build with CGO_ENABLED=0", strings.TrimRight(string(interp), "\x00"))
		}
	}
	arch, _ := goarch(f)
	return arch, nil
}

// layerFile is one entry of the image's only layer.
type layerFile struct {
	name     string // without leading slash
	mode     int64  // permission bits, plus the sticky bit for /tmp
	uid, gid int
	dir      bool
	data     []byte
}

// rootfs lists the layer's entries: the binary, distroless-style passwd/group, /tmp and the home directory.
// Everything is owned by root except the home directory, so the process cannot modify its own binary.
func (s *spec) rootfs(binary, caBundle []byte) []layerFile {
	uid, gid := s.ids()
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", gid)
	files := []layerFile{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
	}
	if caBundle != nil {
		files = append(files,
			layerFile{name: "etc/ssl/", mode: 0o755, dir: true},
			layerFile{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			layerFile{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle})
	}
	files = append(files,
		layerFile{name: "home/", mode: 0o755, dir: true},
		layerFile{name: "home/nonroot/", mode: 0o700, dir: true, uid: uid, gid: gid},
		layerFile{name: "tmp/", mode: 0o1777, dir: true},
		layerFile{name: "usr/", mode: 0o755, dir: true},
		layerFile{name: "usr/local/", mode: 0o755, dir: true},
		layerFile{name: "usr/local/bin/", mode: 0o755, dir: true},
		layerFile{name: strings.TrimPrefix(s.entrypoint(), "/"), mode: 0o755, data: binary},
	)
	return files
}

// layerTar writes files as an uncompressed tar with fixed times and owners, so equal input gives an equal digest.
func layerTar(files []layerFile, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// labels merges the OCI labels derived from the spec with the extra ones (extra wins).
func (s *spec) labels() map[string]string {
	l := map[string]string{
		labelTitle:   s.Name,
		labelVersion: s.Version,
		labelSource:  s.Source,
		labelCreated: s.Created.UTC().Format(time.RFC3339),
	}
	for k, v := range map[string]string{labelRevision: s.Revision, labelDescription: s.Description, labelLicenses: s.Licenses} {
		if v != "" {
			l[k] = v
		}
	}
	for k, v := range s.Labels {
		l[k] = v
	}
	return l
}

// build assembles the image in memory. It reads the binary and the optional CA bundle, nothing else.
func build(s *spec) (v1.Image, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("--binary: %w", err)
	}
	arch, err := inspectBinary(bin)
	if err != nil {
		return nil, fmt.Errorf("--binary %s: %w", s.Binary, err)
	}
	switch {
	case s.Arch == "" && arch == "":
		return nil, fmt.Errorf("--binary %s: unknown ELF machine; pass --arch", s.Binary)
	case s.Arch != "" && arch != "" && s.Arch != arch:
		return nil, fmt.Errorf("--arch %q: the binary %s is %s", s.Arch, s.Binary, arch)
	case s.Arch != "":
		arch = s.Arch
	}
	var ca []byte
	if s.CABundle != "" {
		if ca, err = os.ReadFile(s.CABundle); err != nil {
			return nil, fmt.Errorf("--ca-bundle: %w", err)
		}
		if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
			return nil, fmt.Errorf("--ca-bundle %s: no PEM certificate in the file", s.CABundle)
		}
	}
	raw, err := layerTar(s.rootfs(bin, ca), s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	created := v1.Time{Time: s.Created.UTC()}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: fmt.Sprintf("build-image: static binary %s", s.entrypoint()),
			Comment:   "assembled without a container engine (shared/cmd/build-image)",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Created = created
	cf.Config = v1.Config{
		User:         s.User,
		Entrypoint:   []string{s.entrypoint()},
		Cmd:          s.Cmd,
		Env:          append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.Env...),
		WorkingDir:   "/",
		Labels:       s.labels(),
		ExposedPorts: map[string]struct{}{},
	}
	for _, p := range s.Ports {
		k, _ := portKey(p)
		cf.Config.ExposedPorts[k] = struct{}{}
	}
	if len(cf.Config.ExposedPorts) == 0 {
		cf.Config.ExposedPorts = nil
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// writeTarball writes img as a `docker save`-style tarball (manifest.json, config blob, gzip layer), the
// format both `docker load` and `ctr images import` read. The file appears atomically: a failed build never
// leaves a truncated tarball that an import would half-accept.
func writeTarball(dst, ref string, img v1.Image) (err error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--tag %q: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tarball.Write(tag, img, tmp); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	return nil
}
