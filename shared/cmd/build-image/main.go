// Command build-image writes an OCI image tarball for one static binary without a container engine.
//
// The result is a `docker save`-style archive (manifest.json + config + one gzip layer) that both
// `docker load -i` and `k3s ctr -n k8s.io images import` accept. The image is the binary at
// /usr/local/bin/<name> on an empty base plus distroless-style /etc/passwd, /etc/group and /tmp, and
// optionally a CA bundle; it runs as a numeric non-root user. Example:
//
//	build-image --binary bin/linux-amd64/pod-watcher --name pod-watcher \
//	  --tag ghcr.io/podtype/pod-watcher:dev --version v0.1.0 --source https://github.com/podtype/podtype \
//	  --port 8080 --output dist/images/pod-watcher.tar
//
// `build-image verify FILE...` checks tarballs the way a deployment relies on them: one tagged image,
// consistent digests, linux platform, numeric non-root user and group, the OCI labels (title, version,
// source, created) and an executable, root-owned entrypoint.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run returns the process exit code: 0 done, 1 build failed, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(args[1:], stdout, stderr)
	}
	s, out, err := parseFlags(args, stderr, os.Getenv("SOURCE_DATE_EPOCH"))
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "build-image: %v\n", err)
		return 2
	}
	img, err := build(s)
	if err != nil {
		log.Error("build failed", "image", s.Ref, "err", err)
		return 1
	}
	if err := writeTarball(out, s.Ref, img); err != nil {
		log.Error("write failed", "image", s.Ref, "err", err)
		return 1
	}
	id, err := img.ConfigName()
	if err != nil {
		log.Error("image id", "image", s.Ref, "err", err)
		return 1
	}
	st, err := os.Stat(out)
	if err != nil {
		log.Error("stat output", "path", out, "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s id=%s size=%.1fMB\n", out, s.Ref, id, float64(st.Size())/1e6)
	return 0
}

// runVerify checks each tarball and prints one line per file; any failure makes it exit 1.
func runVerify(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "build-image verify: no tarballs given")
		return 2
	}
	code := 0
	for _, f := range files {
		summary, err := verifyTarball(f)
		if err != nil {
			fmt.Fprintf(stderr, "%s: FAIL %v\n", f, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", f, summary)
	}
	return code
}

// parseFlags builds the spec from the command line; sourceDateEpoch is $SOURCE_DATE_EPOCH
// (reproducible-builds.org), the default image time when --created is not given.
func parseFlags(args []string, stderr io.Writer, sourceDateEpoch string) (*spec, string, error) {
	s := &spec{Labels: map[string]string{}}
	var out, created string
	fs := flag.NewFlagSet("build-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Binary, "binary", "", "static Linux binary to package (required)")
	fs.StringVar(&s.Name, "name", "", "binary name inside the image (/usr/local/bin/NAME) and image title (required)")
	fs.StringVar(&s.Ref, "tag", "", "image reference recorded in the tarball, e.g. ghcr.io/podtype/pod-watcher:dev (required)")
	fs.StringVar(&out, "output", "", "tarball to write, e.g. dist/images/pod-watcher.tar (required)")
	fs.StringVar(&s.User, "user", "65532:65532", "numeric non-root uid[:gid] the container runs as")
	fs.StringVar(&s.Version, "version", "", "org.opencontainers.image.version (required)")
	fs.StringVar(&s.Revision, "revision", "", "org.opencontainers.image.revision (VCS commit)")
	fs.StringVar(&s.Source, "source", "", "org.opencontainers.image.source (repository URL, required)")
	fs.StringVar(&s.Description, "description", "", "org.opencontainers.image.description")
	fs.StringVar(&s.Licenses, "licenses", "", "org.opencontainers.image.licenses (SPDX expression)")
	fs.StringVar(&s.Arch, "arch", "", "image architecture (GOARCH); default: read from the binary")
	fs.StringVar(&s.CABundle, "ca-bundle", "", "PEM file installed as /etc/ssl/certs/ca-certificates.crt (for TLS to non-cluster endpoints)")
	fs.StringVar(&created, "created", "", "image time, RFC 3339 or Unix seconds; default $SOURCE_DATE_EPOCH, else 1970-01-01")
	fs.Func("label", "extra label KEY=VALUE (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		s.Labels[k] = val
		return nil
	})
	fs.Func("port", "exposed port, 8080 or 8080/tcp (repeatable)", func(v string) error {
		s.Ports = append(s.Ports, v)
		return nil
	})
	fs.Func("env", "environment variable NAME=value (repeatable)", func(v string) error {
		s.Env = append(s.Env, v)
		return nil
	})
	fs.Func("cmd", "default argument after the entrypoint (repeatable)", func(v string) error {
		s.Cmd = append(s.Cmd, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if out == "" {
		return nil, "", errors.New("--output: required")
	}
	when, src := created, "--created"
	if when == "" {
		when, src = sourceDateEpoch, "SOURCE_DATE_EPOCH"
	}
	t, err := parseTime(when)
	if err != nil {
		return nil, "", fmt.Errorf("%s %q: %w", src, when, err)
	}
	s.Created = t
	return s, out, nil
}

// parseTime accepts RFC 3339 or Unix seconds; empty means the Unix epoch, the reproducible default.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return time.Time{}, errors.New("negative Unix time")
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds")
	}
	return t.UTC(), nil
}
