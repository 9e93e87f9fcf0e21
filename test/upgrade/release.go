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

package upgrade

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// previousRelease is the commit of the release an upgrade starts from: the
// last before key rotation, whose delivery Secrets are immutable and whose
// hashed records hold neither the parents' UIDs nor the key-group-ref label.
const previousRelease = "d85117a"

// release is a previous release of keyward, built from its commit and kept
// under bin/upgrade/<commit>/: the binary and the manifests the test
// installs from its tree.
type release struct {
	Commit string
	// Binary is the release's keyward.
	Binary string
	// CRDs is its config/crd/bases.
	CRDs string
	// Webhooks is its config/webhook/manifests.yaml.
	Webhooks string
	// Built is how long building it took; zero when a build was reused.
	Built time.Duration
}

// Files of a release's directory; stampFile marks it complete.
const (
	binaryFile   = "keyward"
	crdDir       = "config/crd/bases"
	webhooksFile = "config/webhook/manifests.yaml"
	stampFile    = ".stamp"
)

// cacheDir is where builds are kept outside the clone as well, as
// hack/cache.sh keeps the control plane's: $KEYWARD_CACHE_DIR, default
// ${XDG_CACHE_HOME:-~/.cache}/keyward.
func cacheDir() string {
	if d := os.Getenv("KEYWARD_CACHE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "keyward")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "keyward")
}

// buildRelease returns the release of commit, built under root/bin/upgrade
// on first use. A complete build there is reused; else one in the cache
// outside the clone is copied in; else the commit's tree is taken from git
// (git archive: the working tree and the index stay untouched) and built
// with CGO_ENABLED=0 and -trimpath, then kept in both places.
func buildRelease(root, commit string) (*release, error) {
	dir := filepath.Join(root, "bin", "upgrade", commit)
	r := &release{
		Commit:   commit,
		Binary:   filepath.Join(dir, binaryFile),
		CRDs:     filepath.Join(dir, filepath.FromSlash(crdDir)),
		Webhooks: filepath.Join(dir, filepath.FromSlash(webhooksFile)),
	}
	if complete(dir) {
		return r, nil
	}
	cached := ""
	if c := cacheDir(); c != "" {
		cached = filepath.Join(c, "upgrade", commit)
	}
	if cached != "" && complete(cached) {
		if err := copyTree(cached, dir); err == nil {
			return r, nil
		}
	}
	start := time.Now()
	if err := build(root, commit, dir); err != nil {
		return nil, fmt.Errorf("building keyward %s: %w", commit, err)
	}
	r.Built = time.Since(start)
	if cached != "" {
		_ = copyTree(dir, cached) // a cache that cannot be written is not an error
	}
	return r, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stampFile))
	return err == nil
}

// build builds commit into dir: in a staging directory beside it, renamed
// into place once complete, so that an interrupted build is never reused.
func build(root, commit, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	src, err := os.MkdirTemp("", "keyward-"+commit+"-src-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(src) }()
	if err := extract(root, commit, src); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dir), commit+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(stage) }()

	goBuild := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(stage, binaryFile), ".")
	goBuild.Dir = src
	goBuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := goBuild.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	for _, f := range []string{crdDir, webhooksFile} {
		if err := copyTree(filepath.Join(src, filepath.FromSlash(f)), filepath.Join(stage, filepath.FromSlash(f))); err != nil {
			return err
		}
	}
	if err := os.Chmod(stage, 0o755); err != nil { // MkdirTemp's 0700
		return err
	}
	stamp := fmt.Sprintf("keyward %s built by %s for %s/%s\n", commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if err := os.WriteFile(filepath.Join(stage, stampFile), []byte(stamp), 0o644); err != nil {
		return err
	}
	if err := os.Rename(stage, dir); err != nil {
		if complete(dir) {
			return nil // another run built it meanwhile
		}
		return err
	}
	return nil
}

// extract writes commit's tree into dir: git archive piped to tar.
func extract(root, commit, dir string) error {
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var archiveErr, untarErr strings.Builder
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := archive.Start(); err != nil {
		return fmt.Errorf("git archive: %w", err)
	}
	errUntar := untar.Run()
	if errUntar != nil {
		_ = archive.Process.Kill()
	}
	// git's complaint first: tar fails whenever git does.
	if err := archive.Wait(); err != nil && archiveErr.Len() > 0 {
		return fmt.Errorf("git archive %s (a shallow clone may lack the commit: fetch it): %w: %s", commit, err, strings.TrimSpace(archiveErr.String()))
	}
	if errUntar != nil {
		return fmt.Errorf("tar: %w: %s", errUntar, strings.TrimSpace(untarErr.String()))
	}
	return nil
}

// copyTree copies the file or directory src to dst, replacing dst whole:
// through a staging path beside it, renamed into place.
func copyTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	_ = os.RemoveAll(tmp)
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(tmp, rel)
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		return copyFile(path, to, info.Mode().Perm())
	})
	if err == nil {
		_ = os.RemoveAll(dst)
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	return err
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
