/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command image builds keyward's container image without a Docker engine
// (make image). No base image is pulled: each architecture's image is one
// layer holding the static binary at /keyward, /etc/passwd and /etc/group
// with the non-root user 65532 "nonroot", its home and /tmp. It writes a
// multi-architecture OCI layout (<out>/image) and, per architecture, a
// tarball that docker load and kind load image-archive read
// (<out>/keyward-image-<arch>.tar).
//
// The build is reproducible: the same commit gives the same digests. Every
// timestamp is the commit time (or SOURCE_DATE_EPOCH), the layer's entries
// are sorted with fixed owners and modes, and the binary is built with
// -trimpath, -buildvcs=false and an empty build ID, with the environment
// that could change it (GOFLAGS, GOAMD64, GOARM64, CGO_ENABLED) pinned. The
// binary embeds the public CA roots (golang.org/x/crypto/x509roots/fallback),
// so the image needs no certificate bundle.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Fixed facts of the image.
const (
	// Binary is where the binary lies in the image, and its entrypoint.
	Binary = "/keyward"
	// User is the image's user and group: distroless's "nonroot".
	User = "65532:65532"
	// DefaultRepository names the image in the tarballs, as config/ and
	// the chart name it.
	DefaultRepository = "ghcr.io/keyward/keyward"
	source            = "https://github.com/keyward/keyward"
	title             = "keyward"
	description       = "API keys for Kubernetes ingresses: the keyward manager (controllers and admission webhooks) and verifier (ingress external auth)"
	licenses          = "Apache-2.0"
)

// Options says what to build and how to name it.
type Options struct {
	// Src is the module root of keyward (holding main.go).
	Src string
	// Out receives image/ and keyward-image-<arch>.tar.
	Out string
	// Arches are the linux architectures to build, each its own image.
	Arches []string
	// Repository and Version name the image in the tarballs
	// (<repository>:<version>); Version is also a label.
	Repository string
	Version    string
	// Revision is the commit, a label.
	Revision string
	// Created is the commit time: the image's, its labels' and every file's.
	Created time.Time
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(2)
	}
	res, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s  %s (index, %s)\n", res.Index, filepath.Join(o.Out, "image"), strings.Join(o.Arches, ", "))
	for _, a := range o.Arches {
		fmt.Printf("%s  %s (%s:%s, linux/%s)\n", res.Images[a], res.Tarballs[a], o.Repository, o.Version, a)
	}
}

// parseFlags reads the options; what is not given comes from git in the
// source directory.
func parseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var o Options
	var arches, created string
	fs.StringVar(&o.Src, "src", ".", "keyward's module root")
	fs.StringVar(&o.Out, "out", "dist", "output directory: image/ (OCI layout) and keyward-image-<arch>.tar")
	fs.StringVar(&arches, "arch", "amd64,arm64", "linux architectures, comma-separated")
	fs.StringVar(&o.Repository, "repository", DefaultRepository, "image name in the tarballs")
	fs.StringVar(&o.Version, "version", "", "image tag and version label (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.Revision, "revision", "", "revision label (default: git rev-parse HEAD)")
	fs.StringVar(&created, "created", "", "creation time, Unix seconds (default: SOURCE_DATE_EPOCH, else the commit time)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Arches = strings.Split(arches, ",")
	if slices.Contains(o.Arches, "") {
		return o, fmt.Errorf("-arch %q: an empty architecture", arches)
	}
	var err error
	if o.Version == "" {
		if o.Version, err = git(o.Src, "describe", "--tags", "--always", "--dirty"); err != nil {
			return o, err
		}
	}
	if o.Revision == "" {
		if o.Revision, err = git(o.Src, "rev-parse", "HEAD"); err != nil {
			return o, err
		}
	}
	if created == "" {
		created = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if created == "" {
		if created, err = git(o.Src, "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return o, err
		}
	}
	sec, err := strconv.ParseInt(created, 10, 64)
	if err != nil {
		return o, fmt.Errorf("creation time %q: not Unix seconds", created)
	}
	o.Created = time.Unix(sec, 0).UTC()
	return o, nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...) //nolint:gosec // G204: git with this program's own arguments
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Result holds the digests of what Build wrote.
type Result struct {
	// Index is the digest of the multi-architecture image index.
	Index v1.Hash
	// Images and Tarballs are per architecture: the image manifest's
	// digest and the tarball's path.
	Images   map[string]v1.Hash
	Tarballs map[string]string
}

// Build compiles keyward for each architecture, assembles the images and
// writes the OCI layout and the tarballs.
func Build(o Options) (Result, error) {
	if len(o.Arches) == 0 || o.Version == "" || o.Revision == "" || o.Created.IsZero() {
		return Result{}, errors.New("need architectures, a version, a revision and a creation time")
	}
	tmp, err := os.MkdirTemp("", "keyward-image-")
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	images := make(map[string]v1.Image, len(o.Arches))
	for _, arch := range o.Arches {
		bin := filepath.Join(tmp, "keyward-"+arch)
		if err := compile(o.Src, arch, bin); err != nil {
			return Result{}, err
		}
		img, err := image(o, arch, bin)
		if err != nil {
			return Result{}, fmt.Errorf("image for linux/%s: %w", arch, err)
		}
		images[arch] = img
	}
	return write(o, images)
}

// compile builds a static keyward for linux/arch into bin, from src alone:
// nothing of the host's Go settings that could change the bytes.
func compile(src, arch, bin string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", //nolint:gosec // G204: go build into our scratch directory
		"-ldflags=-s -w -buildid=", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		"GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w\n%s", arch, err, out)
	}
	return nil
}

// Labels are the image's labels, by the OCI annotation conventions; the
// manifests and the index carry them as annotations too.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    licenses,
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
	}
}
