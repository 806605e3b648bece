package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const testRef = "ghcr.io/podtype/hello:test"

// buildHello compiles a tiny static Linux program for the host architecture.
func buildHello(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the image\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hello: %v\n%s", err, out)
	}
	return bin
}

// tarEntries reads a tar stream into name -> header and content.
func tarEntries(t *testing.T, r io.Reader) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar entry %s: %v", h.Name, err)
		}
		hdrs[h.Name], data[h.Name] = h, b
	}
}

func TestBuildRoundTrip(t *testing.T) {
	bin := buildHello(t)
	binData, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "images", "hello.tar")
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--binary", bin, "--name", "hello", "--tag", testRef, "--output", out,
		"--version", "v1.2.3", "--revision", "abc123", "--source", "https://github.com/podtype/podtype",
		"--port", "8080", "--port", "9090/tcp", "--env", "LOG_FORMAT=json", "--label", "team=sre",
		"--created", "2026-01-02T03:04:05Z",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run = %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), testRef) {
		t.Errorf("stdout %q does not name the image", stdout.String())
	}

	tag, err := name.NewTag(testRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read tarball back: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("digests and diff IDs inconsistent: %v", err)
	}

	t.Run("config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		checks := []struct {
			what      string
			got, want any
		}{
			{"user", c.User, "65532:65532"},
			{"entrypoint", c.Entrypoint, []string{"/usr/local/bin/hello"}},
			{"os", cf.OS, "linux"},
			{"architecture", cf.Architecture, runtime.GOARCH},
			{"created", cf.Created.UTC(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			{"env", c.Env, []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LOG_FORMAT=json"}},
			{"ports", c.ExposedPorts, map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}}},
			{"label title", c.Labels[labelTitle], "hello"},
			{"label version", c.Labels[labelVersion], "v1.2.3"},
			{"label revision", c.Labels[labelRevision], "abc123"},
			{"label source", c.Labels[labelSource], "https://github.com/podtype/podtype"},
			{"label created", c.Labels[labelCreated], "2026-01-02T03:04:05Z"},
			{"extra label", c.Labels["team"], "sre"},
		}
		for _, ck := range checks {
			if !reflect.DeepEqual(ck.got, ck.want) {
				t.Errorf("%s = %#v, want %#v", ck.what, ck.got, ck.want)
			}
		}
		if strings.HasPrefix(c.User, "0") || c.User == "" {
			t.Errorf("user %q is root", c.User)
		}
	})

	t.Run("layer", func(t *testing.T) {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("got %d layers, want 1", len(layers))
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		hdrs, data := tarEntries(t, rc)
		files := []struct {
			name     string
			mode     int64
			uid, gid int
		}{
			{"usr/local/bin/hello", 0o755, 0, 0},
			{"etc/passwd", 0o644, 0, 0},
			{"tmp/", 0o1777, 0, 0},
			{"home/nonroot/", 0o700, 65532, 65532},
		}
		for _, f := range files {
			h, ok := hdrs[f.name]
			if !ok {
				t.Errorf("%s missing from the layer", f.name)
				continue
			}
			if h.Mode != f.mode || h.Uid != f.uid || h.Gid != f.gid {
				t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", f.name, h.Mode, h.Uid, h.Gid, f.mode, f.uid, f.gid)
			}
		}
		if !bytes.Equal(data["usr/local/bin/hello"], binData) {
			t.Errorf("binary in the layer differs from the input")
		}
		if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") {
			t.Errorf("etc/passwd lacks the nonroot user:\n%s", data["etc/passwd"])
		}
		if _, ok := hdrs["etc/ssl/certs/ca-certificates.crt"]; ok {
			t.Errorf("CA bundle present although --ca-bundle was not given")
		}
		if runtime.GOOS != "linux" {
			return
		}
		// The strongest check of the layer: the extracted binary still runs.
		extracted := filepath.Join(t.TempDir(), "hello")
		if err := os.WriteFile(extracted, data["usr/local/bin/hello"], 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(extracted).Output()
		if err != nil || string(got) != "hello from the image\n" {
			t.Errorf("extracted binary: %q, %v", got, err)
		}
	})

	// ctr images import reads manifest.json (Config, RepoTags, Layers) and only regular files;
	// docker load reads the same. Check the archive is exactly that.
	t.Run("archive", func(t *testing.T) {
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		hdrs, data := tarEntries(t, f)
		var mf []struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		if err := json.Unmarshal(data["manifest.json"], &mf); err != nil {
			t.Fatalf("manifest.json: %v", err)
		}
		if len(mf) != 1 || !reflect.DeepEqual(mf[0].RepoTags, []string{testRef}) {
			t.Fatalf("manifest.json = %+v, want one image tagged %s", mf, testRef)
		}
		for _, p := range append([]string{mf[0].Config}, mf[0].Layers...) {
			h, ok := hdrs[p]
			if !ok {
				t.Errorf("manifest.json names %s, not in the archive", p)
				continue
			}
			if h.Typeflag != tar.TypeReg {
				t.Errorf("%s: type %c, want a regular file", p, h.Typeflag)
			}
		}
		id, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data[mf[0].Config])
		if got := (v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}); got != id {
			t.Errorf("config blob digest differs from image id %s", id)
		}
	})
}

func TestBuildReproducible(t *testing.T) {
	bin := buildHello(t)
	dir := t.TempDir()
	var sums []string
	for _, out := range []string{"a.tar", "b.tar"} {
		s := &spec{Name: "hello", Binary: bin, Ref: testRef, User: "65532:65532", Version: "v1", Source: "https://example.org/x",
			Created: time.Unix(1700000000, 0)}
		img, err := build(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, out)
		if err := writeTarball(p, s.Ref, img); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds of the same input differ: %s != %s", sums[0], sums[1])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestBuildCABundle(t *testing.T) {
	bin := buildHello(t)
	dir := t.TempDir()
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{"pem", pem, false},
		{"not pem", "hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".crt")
			if err := os.WriteFile(ca, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s := &spec{Name: "hello", Binary: bin, Ref: testRef, User: "65532", Version: "v1", Source: "https://example.org/x", CABundle: ca}
			img, err := build(s)
			if (err != nil) != tt.wantErr {
				t.Fatalf("build err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			_, data := tarEntries(t, rc)
			if string(data["etc/ssl/certs/ca-certificates.crt"]) != pem {
				t.Errorf("CA bundle not installed at /etc/ssl/certs/ca-certificates.crt")
			}
		})
	}
}

// fakeELF returns a minimal 64-bit little-endian ELF executable header, with a PT_INTERP program
// header when interp is set (what a cgo binary has).
func fakeELF(t *testing.T, machine elf.Machine, interp string) []byte {
	t.Helper()
	const ehsize, phsize = 64, 56
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Ehsize: ehsize, Phentsize: phsize,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	if interp != "" {
		hdr.Phoff, hdr.Phnum = ehsize, 1
	}
	if err := binary.Write(&buf, binary.LittleEndian, hdr); err != nil {
		t.Fatal(err)
	}
	if interp != "" {
		s := append([]byte(interp), 0)
		ph := elf.Prog64{Type: uint32(elf.PT_INTERP), Off: ehsize + phsize, Filesz: uint64(len(s)), Memsz: uint64(len(s))}
		if err := binary.Write(&buf, binary.LittleEndian, ph); err != nil {
			t.Fatal(err)
		}
		buf.Write(s)
	}
	return buf.Bytes()
}

func TestInspectBinary(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		wantArch string
		wantErr  string
	}{
		{"static amd64", fakeELF(t, elf.EM_X86_64, ""), "amd64", ""},
		{"static arm64", fakeELF(t, elf.EM_AARCH64, ""), "arm64", ""},
		{"unknown machine", fakeELF(t, elf.EM_MIPS, ""), "", ""},
		{"dynamic", fakeELF(t, elf.EM_X86_64, "/lib64/ld-linux-x86-64.so.2"), "", "CGO_ENABLED=0"},
		{"shell script", []byte("#!/bin/sh\necho hi\n"), "", "not an ELF"},
		{"empty", nil, "", "not an ELF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arch, err := inspectBinary(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || arch != tt.wantArch {
				t.Fatalf("inspectBinary = %q, %v; want %q", arch, err, tt.wantArch)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	arm := filepath.Join(dir, "arm")
	if err := os.WriteFile(arm, fakeELF(t, elf.EM_AARCH64, ""), 0o755); err != nil {
		t.Fatal(err)
	}
	mips := filepath.Join(dir, "mips")
	if err := os.WriteFile(mips, fakeELF(t, elf.EM_MIPS, ""), 0o755); err != nil {
		t.Fatal(err)
	}
	good := func() *spec {
		return &spec{Name: "x", Binary: arm, Ref: testRef, User: "65532:65532", Version: "v1", Source: "https://example.org/x"}
	}
	tests := []struct {
		name    string
		mutate  func(s *spec)
		wantErr string // "" = must build
	}{
		{"valid", func(*spec) {}, ""},
		{"arch from flag for unknown machine", func(s *spec) { s.Binary, s.Arch = mips, "mips64" }, ""},
		{"unknown machine without arch", func(s *spec) { s.Binary = mips }, "--arch"},
		{"arch mismatch", func(s *spec) { s.Arch = "amd64" }, "--arch"},
		{"root uid", func(s *spec) { s.User = "0" }, "--user"},
		{"root gid", func(s *spec) { s.User = "65532:0" }, "--user"},
		{"user name", func(s *spec) { s.User = "nonroot" }, "--user"},
		{"uid too big", func(s *spec) { s.User = "99999999999" }, "--user"},
		{"bad name", func(s *spec) { s.Name = "Pod Watcher" }, "--name"},
		{"no binary", func(s *spec) { s.Binary = "" }, "--binary"},
		{"missing binary", func(s *spec) { s.Binary = filepath.Join(dir, "nope") }, "--binary"},
		{"untagged ref", func(s *spec) { s.Ref = "ghcr.io/podtype/x" }, "--tag"},
		{"no version", func(s *spec) { s.Version = "" }, "--version"},
		{"no source", func(s *spec) { s.Source = "" }, "--source"},
		{"port zero", func(s *spec) { s.Ports = []string{"0"} }, "--port"},
		{"port proto", func(s *spec) { s.Ports = []string{"80/http"} }, "--port"},
		{"env without value", func(s *spec) { s.Env = []string{"FOO"} }, "--env"},
		{"env bad name", func(s *spec) { s.Env = []string{"1FOO=x"} }, "--env"},
		{"empty label key", func(s *spec) { s.Labels = map[string]string{"": "x"} }, "--label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mutate(s)
			_, err := build(s)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to name %s", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyTarball(t *testing.T) {
	bin := buildHello(t)
	good, err := build(&spec{Name: "hello", Binary: bin, Ref: testRef, User: "65532:65532", Version: "v1",
		Source: "https://example.org/x", Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	withConfig := func(change func(c *v1.Config)) v1.Image {
		cf, err := good.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		change(&cf.Config)
		img, err := mutate.ConfigFile(good, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// A layer overriding the binary with a world-writable copy.
	var layerBuf bytes.Buffer
	tw := tar.NewWriter(&layerBuf)
	if err := tw.WriteHeader(&tar.Header{Name: "usr/local/bin/hello", Mode: 0o777, Size: 2, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBuf.Bytes())), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	writable, err := mutate.AppendLayers(good, layer)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		img     v1.Image
		wantErr string // "" = must pass
	}{
		{"built image", good, ""},
		{"root user", withConfig(func(c *v1.Config) { c.User = "0:0" }), "root uid"},
		{"root group", withConfig(func(c *v1.Config) { c.User = "65532:00" }), "root uid"},
		{"no user", withConfig(func(c *v1.Config) { c.User = "" }), "numeric"},
		{"named user", withConfig(func(c *v1.Config) { c.User = "nonroot" }), "numeric"},
		{"missing label", withConfig(func(c *v1.Config) { delete(c.Labels, labelSource) }), labelSource},
		{"no entrypoint", withConfig(func(c *v1.Config) { c.Entrypoint = nil }), "entrypoint"},
		{"entrypoint not in image", withConfig(func(c *v1.Config) { c.Entrypoint = []string{"/bin/sh"} }), "not in the image"},
		{"entrypoint writable", writable, "change its own binary"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("%d.tar", i))
			if err := writeTarball(p, testRef, tt.img); err != nil {
				t.Fatal(err)
			}
			summary, err := verifyTarball(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if !strings.Contains(summary, testRef) || !strings.Contains(summary, "user=65532:65532") {
					t.Errorf("summary %q lacks the tag or user", summary)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
	t.Run("exit code", func(t *testing.T) {
		bad := filepath.Join(dir, "1.tar") // the root-user image
		var stdout, stderr bytes.Buffer
		if code := run([]string{"verify", filepath.Join(dir, "0.tar"), bad}, &stdout, &stderr); code != 1 {
			t.Errorf("verify with one bad tarball = %d, want 1; stderr %s", code, stderr.String())
		}
		if code := run([]string{"verify"}, &stdout, &stderr); code != 2 {
			t.Errorf("verify without files = %d, want 2", code)
		}
	})
}
