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

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/keyward/keyward/test/testenv"
)

// The first build is shared by the tests that read it: compiling keyward
// for arm64 takes minutes on two cores.
var (
	first struct {
		once sync.Once
		opts Options
		res  Result
		err  error
	}
	scratch string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if scratch != "" {
		_ = os.RemoveAll(scratch)
	}
	os.Exit(code)
}

// built returns the first build of the image, both architectures, made
// from a snapshot of the working tree so that edits made meanwhile cannot
// change it.
func built(t *testing.T) (Options, Result) {
	t.Helper()
	if testenv.SkipsEndToEnd() {
		t.Skip("builds keyward for linux/amd64 and linux/arm64, twice; runs in make test, not make test-unit (-short)")
	}
	first.once.Do(func() {
		first.opts, first.err = testOptions()
		if first.err == nil {
			first.res, first.err = Build(first.opts)
		}
	})
	if first.err != nil {
		t.Fatal(first.err)
	}
	return first.opts, first.res
}

// testOptions snapshots the tree into the scratch directory and names the
// image after the repository's HEAD.
func testOptions() (Options, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return Options{}, err
	}
	if scratch, err = os.MkdirTemp("", "keyward-image-test-"); err != nil {
		return Options{}, err
	}
	src := filepath.Join(scratch, "src")
	if err := snapshot(root, src); err != nil {
		return Options{}, err
	}
	rev, err := git(root, "rev-parse", "HEAD")
	if err != nil {
		return Options{}, err
	}
	ct, err := git(root, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return Options{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Options{}, err
	}
	return Options{
		Src:        src,
		Out:        filepath.Join(scratch, "dist"),
		Arches:     []string{"amd64", "arm64"},
		Repository: DefaultRepository,
		Version:    "v0.0.0-test",
		Revision:   rev,
		Created:    time.Unix(sec, 0).UTC(),
	}, nil
}

// snapshot copies the files git would commit (tracked and untracked, not
// ignored) from root to dst.
func snapshot(root, dst string) error {
	out, err := git(root, "ls-files", "-z", "-co", "--exclude-standard")
	if err != nil {
		return err
	}
	for _, f := range strings.Split(out, "\x00") {
		if f == "" || strings.HasPrefix(f, "bin/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted, not yet committed
		}
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// TestImageLayout reads dist/image back: index.json names one image index,
// which lists both architectures, each with its own image.
func TestImageLayout(t *testing.T) {
	o, res := built(t)
	p, err := layout.FromPath(filepath.Join(o.Out, "image"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 {
		t.Fatalf("index.json lists %d descriptors, want 1 (the image index)", len(tm.Manifests))
	}
	d := tm.Manifests[0]
	if d.MediaType != types.OCIImageIndex || d.Digest != res.Index {
		t.Errorf("index.json names %s %s, want %s %s", d.MediaType, d.Digest, types.OCIImageIndex, res.Index)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != o.Version {
		t.Errorf("ref.name %q, want %q", got, o.Version)
	}

	idx, err := top.ImageIndex(res.Index)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(im.Annotations, Labels(o)) {
		t.Errorf("index annotations %v, want %v", im.Annotations, Labels(o))
	}
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		platforms = append(platforms, m.Platform.String())
		if m.MediaType != types.OCIManifestSchema1 || m.Digest != res.Images[m.Platform.Architecture] {
			t.Errorf("%s: %s %s, want %s %s", m.Platform, m.MediaType, m.Digest, types.OCIManifestSchema1, res.Images[m.Platform.Architecture])
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != m.Platform.OS || cf.Architecture != m.Platform.Architecture {
			t.Errorf("manifest for %s holds a config for %s/%s", m.Platform, cf.OS, cf.Architecture)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}
}

// TestImageConfig checks each architecture's config and its one layer, as
// the layout holds them.
func TestImageConfig(t *testing.T) {
	o, res := built(t)
	idx := layoutIndex(t, o, res)
	for _, arch := range o.Arches {
		t.Run(arch, func(t *testing.T) {
			img, err := idx.Image(res.Images[arch])
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/keyward"}) ||
				cf.Config.WorkingDir != "/" || len(cf.Config.Cmd) != 0 || len(cf.Config.Env) != 0 {
				t.Errorf("config: user %q, entrypoint %q, cmd %q, workdir %q, env %q; want 65532:65532, [/keyward], none, /, none",
					cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.WorkingDir, cf.Config.Env)
			}
			wantLabels := map[string]string{
				"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
				"org.opencontainers.image.source":      "https://github.com/keyward/keyward",
				"org.opencontainers.image.revision":    o.Revision,
				"org.opencontainers.image.version":     "v0.0.0-test",
				"org.opencontainers.image.licenses":    "Apache-2.0",
				"org.opencontainers.image.title":       "keyward",
				"org.opencontainers.image.description": description,
			}
			if !reflect.DeepEqual(cf.Config.Labels, wantLabels) {
				t.Errorf("labels %v, want %v", cf.Config.Labels, wantLabels)
			}
			if !cf.Created.Equal(o.Created) || cf.OS != "linux" || cf.Architecture != arch {
				t.Errorf("created %s for %s/%s, want %s for linux/%s", cf.Created.Time, cf.OS, cf.Architecture, o.Created, arch)
			}
			if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
				t.Errorf("manifest media type %s", mt)
			}
			checkLayer(t, img, o.Created)
		})
	}
}

// layoutIndex is the image index that dist/image's index.json names.
func layoutIndex(t *testing.T, o Options, res Result) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(filepath.Join(o.Out, "image"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(res.Index)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// entry is a layer entry as the test expects it.
type entry struct {
	name     string
	mode     int64
	uid, gid int
}

// checkLayer reads the image's only layer: exactly the root filesystem,
// fixed owners, modes and times.
func checkLayer(t *testing.T, img v1.Image, created time.Time) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	var got []entry
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Mode, h.Uid, h.Gid})
		if !h.ModTime.Equal(created) {
			t.Errorf("%s: modified %s, want the commit time %s", h.Name, h.ModTime, created)
		}
		if strings.HasPrefix(h.Name, "etc/") && h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
		}
	}
	want := []entry{
		{"etc/", 0o755, 0, 0},
		{"etc/group", 0o644, 0, 0},
		{"etc/passwd", 0o644, 0, 0},
		{"home/", 0o755, 0, 0},
		{"home/nonroot/", 0o700, 65532, 65532},
		{"keyward", 0o755, 0, 0},
		{"tmp/", 0o1777, 0, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(files["etc/passwd"], "\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") ||
		!strings.Contains(files["etc/group"], "\nnonroot:x:65532:\n") {
		t.Errorf("no nonroot user 65532: passwd %q, group %q", files["etc/passwd"], files["etc/group"])
	}
}

// TestImageTarballs reads each dist/keyward-image-<arch>.tar as docker load
// does: one image tagged <repository>:<version>, the layout's config and
// layer.
func TestImageTarballs(t *testing.T) {
	o, res := built(t)
	idx := layoutIndex(t, o, res)
	for _, arch := range o.Arches {
		t.Run(arch, func(t *testing.T) {
			path := filepath.Join(o.Out, "keyward-image-"+arch+".tar")
			m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultRepository + ":v0.0.0-test"
			if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{want}) {
				t.Fatalf("manifest.json %+v, want one image tagged %s", m, want)
			}
			tag, err := name.NewTag(want)
			if err != nil {
				t.Fatal(err)
			}
			fromTar, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				t.Fatal(err)
			}
			fromLayout, err := idx.Image(res.Images[arch])
			if err != nil {
				t.Fatal(err)
			}
			if a, b := configName(t, fromTar), configName(t, fromLayout); a != b {
				t.Errorf("tarball's config %s, layout's %s", a, b)
			}
			if a, b := layerDigests(t, fromTar), layerDigests(t, fromLayout); !slices.Equal(a, b) {
				t.Errorf("tarball's layers %v, layout's %v", a, b)
			}
			cf, err := fromTar.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != arch || cf.Config.User != User {
				t.Errorf("tarball's image: %s, user %q", cf.Architecture, cf.Config.User)
			}
		})
	}
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var hs []v1.Hash
	for _, l := range ls {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// TestImageBinaryRuns extracts /keyward from the host architecture's
// tarball and runs keyward --help: usage on stderr, exit status 0. Its
// build information shows a static, trimmed build with the embedded CA
// roots.
func TestImageBinaryRuns(t *testing.T) {
	o, _ := built(t)
	if runtime.GOOS != "linux" || !slices.Contains(o.Arches, runtime.GOARCH) {
		msg := fmt.Sprintf("no image for this host, %s/%s: the binary cannot run here", runtime.GOOS, runtime.GOARCH)
		if os.Getenv("KEYWARD_REQUIRE_E2E") == "1" {
			t.Fatal(msg) // CI runs on linux/amd64: it must run the binary
		}
		t.Skip(msg)
	}
	img, err := tarball.ImageFromPath(filepath.Join(o.Out, "keyward-image-"+runtime.GOARCH+".tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "keyward")
	extract(t, img, "keyward", bin)

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyward --help: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"Usage: keyward <command>", "manager", "verifier"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("keyward --help says no %q:\n%s", want, stderr.String())
		}
	}

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux", "GOARCH": runtime.GOARCH} {
		if settings[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
	// go version -m omits -ldflags under -trimpath; a stripped binary has
	// no symbol table.
	if f, err := elf.Open(bin); err != nil {
		t.Error(err)
	} else {
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table: not built with -ldflags=-s")
		}
		_ = f.Close()
	}
	if _, ok := settings["vcs.revision"]; ok {
		t.Error("the binary records VCS information: builds of one commit would differ with the tree's state")
	}
	if !slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("the binary does not embed golang.org/x/crypto/x509roots/fallback: no CA roots in the image")
	}
}

// extract writes the layer file at name to dst, executable.
func extract(t *testing.T, img v1.Image, name, dst string) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", name, err)
		}
		if h.Name != name {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// TestImageReproducible builds the image a second time from the same tree
// into another directory: the index, each image and each tarball are the
// same, byte for byte.
func TestImageReproducible(t *testing.T) {
	o, res := built(t)
	o2 := o
	o2.Out = t.TempDir()
	res2, err := Build(o2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index %s on both builds", res2.Index)
	if res2.Index != res.Index {
		t.Errorf("index digest %s, then %s", res.Index, res2.Index)
	}
	for _, arch := range o.Arches {
		if res2.Images[arch] != res.Images[arch] {
			t.Errorf("linux/%s image digest %s, then %s", arch, res.Images[arch], res2.Images[arch])
		}
		a, b := fileDigest(t, res.Tarballs[arch]), fileDigest(t, res2.Tarballs[arch])
		if a != b {
			t.Errorf("%s: sha256 %s, then %s", filepath.Base(res.Tarballs[arch]), a, b)
		}
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		a, b := fileDigest(t, filepath.Join(o.Out, "image", f)), fileDigest(t, filepath.Join(o2.Out, "image", f))
		if a != b {
			t.Errorf("image/%s differs", f)
		}
	}
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestLayerIsDeterministic needs no build: the same binary and time give
// the same layer, and its gzip header carries no time or name.
func TestLayerIsDeterministic(t *testing.T) {
	o := Options{Created: time.Unix(1700000000, 0).UTC()}
	var digests []v1.Hash
	for range 2 {
		l, err := layer(o, []byte("\x7fELF not really"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, h)
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		if !zr.ModTime.IsZero() || zr.Name != "" {
			t.Errorf("gzip header: time %s, name %q", zr.ModTime, zr.Name)
		}
		_ = rc.Close()
	}
	if digests[0] != digests[1] {
		t.Errorf("layer digest %s, then %s", digests[0], digests[1])
	}
}

// TestParseFlags: what the flags leave out comes from git or
// SOURCE_DATE_EPOCH.
func TestParseFlags(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	o, err := parseFlags([]string{"-version", "v1.2.3", "-revision", "abc", "-arch", "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Created.Equal(time.Unix(1700000000, 0)) || o.Version != "v1.2.3" || o.Revision != "abc" ||
		!slices.Equal(o.Arches, []string{"arm64"}) || o.Repository != DefaultRepository || o.Out != "dist" {
		t.Errorf("options %+v", o)
	}
	if _, err := parseFlags([]string{"-version", "v", "-revision", "r", "-created", "yesterday"}); err == nil {
		t.Error("-created yesterday accepted")
	}
	if _, err := parseFlags([]string{"-version", "v", "-revision", "r", "-arch", "amd64,"}); err == nil {
		t.Error("-arch amd64, accepted: go build would build for the host")
	}
}
