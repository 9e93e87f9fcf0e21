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

package asshipped

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// envPodInit carries a podInit, as JSON, to the test binary re-executed as
// a pod's first process: its presence makes TestMain call PodInit.
const envPodInit = "KEYWARD_ASSHIPPED_POD_INIT"

// serviceAccountDir is where in-cluster configuration reads the token,
// ca.crt and namespace (rest.InClusterConfig).
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// podInit is what the container runtime does inside the pod's namespaces
// before the container's entrypoint runs: the volumes mounted, the root
// file system made read-only, the hostname set, privileges dropped.
type podInit struct {
	Hostname string
	// ServiceAccount is a directory holding token, ca.crt and namespace,
	// mounted read-only at serviceAccountDir.
	ServiceAccount string
	// EmptyDirs are mount paths, /tmp or under it, that get an empty
	// writable file system each.
	EmptyDirs []string
	// ReadOnlyRoot makes "/" (and the pod's /tmp and /run) read-only.
	ReadOnlyRoot bool
	// UID and GID the entrypoint runs as; 0 keeps root.
	UID, GID int
	// NoNewPrivs is allowPrivilegeEscalation: false.
	NoNewPrivs bool
	// Path is the entrypoint, Args its arguments, Env its environment.
	Path string
	Args []string
	Env  []string
}

// IsPodInit reports whether this process was started as a pod's init.
func IsPodInit() bool { return os.Getenv(envPodInit) != "" }

// PodInit sets the pod up as podInit in $KEYWARD_ASSHIPPED_POD_INIT says,
// waits until the harness has wired the pod's network (one byte on stdin),
// then executes the entrypoint. It returns only to exit on an error.
func PodInit() {
	var p podInit
	err := json.Unmarshal([]byte(os.Getenv(envPodInit)), &p)
	if err == nil {
		err = p.run()
	}
	fmt.Fprintln(os.Stderr, "asshipped pod init:", err)
	os.Exit(127)
}

func (p *podInit) run() error {
	// The thread that sets no_new_privs and the parent-death signal is the
	// one that executes the entrypoint.
	runtime.LockOSThread()
	// The entrypoint, opened before the pod's /tmp is mounted: a checkout
	// under /tmp (a CI clone) would be hidden by it. Executed through its
	// descriptor.
	bin, err := os.Open(p.Path)
	if err != nil {
		return fmt.Errorf("the entrypoint: %w", err)
	}
	defer bin.Close()
	if err := p.mount(); err != nil {
		return err
	}
	if err := syscall.Sethostname([]byte(p.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("waiting for the network: %w", err)
	}
	if err := p.drop(); err != nil {
		return err
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	return syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", bin.Fd()), append([]string{"/keyward"}, p.Args...), p.Env)
}

// The pod's own /run (which holds the token's mount point) and /tmp, on
// tmpfs: the host's stay out of its view.
const (
	podRun = "/run"
	podTmp = "/tmp"
	tmpfs  = "tmpfs"
)

// mount builds the pod's view of the file system in its own mount
// namespace: nothing here propagates to the host.
func (p *podInit) mount() error {
	steps := []struct {
		what               string
		source, target, fs string
		flags              uintptr
		data               string
		mkdirTarget        bool
	}{
		{what: "making mounts private", target: "/", flags: syscall.MS_REC | syscall.MS_PRIVATE},
		{what: podRun, source: tmpfs, target: podRun, fs: tmpfs, data: "mode=755,size=1m"},
		{what: "the service account mount point", target: serviceAccountDir, mkdirTarget: true},
		{what: "the service account token", source: p.ServiceAccount, target: serviceAccountDir, flags: syscall.MS_BIND},
		{what: "the service account token read-only", target: serviceAccountDir, flags: syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY},
		{what: podTmp, source: tmpfs, target: podTmp, fs: tmpfs, data: "mode=1777,size=16m"},
	}
	for _, s := range steps {
		if s.mkdirTarget {
			if err := os.MkdirAll(s.target, 0o755); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
			continue
		}
		if err := syscall.Mount(s.source, s.target, s.fs, s.flags, s.data); err != nil {
			return fmt.Errorf("mounting %s: %w", s.what, err)
		}
	}
	// Outer first: an emptyDir at /tmp holds the mount points of those in it.
	dirs := slices.Clone(p.EmptyDirs)
	slices.Sort(dirs)
	for _, d := range dirs {
		if filepath.Clean(d) != d || (d != podTmp && !strings.HasPrefix(d, podTmp+"/")) {
			return fmt.Errorf("emptyDir at %s: the harness mounts emptyDirs under /tmp only", d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(tmpfs, d, tmpfs, 0, "mode=1777,size=16m"); err != nil {
			return fmt.Errorf("mounting the emptyDir %s: %w", d, err)
		}
	}
	if !p.ReadOnlyRoot {
		return nil
	}
	// A bind remount changes this namespace's mount, never the file
	// system's own flags (which the host shares).
	readOnly := []string{"/", podRun}
	if !slices.Contains(dirs, podTmp) {
		readOnly = append(readOnly, podTmp)
	}
	for _, m := range readOnly {
		if err := syscall.Mount("", m, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", m, err)
		}
	}
	return nil
}

// drop runs the rest as the container's user, without privileges.
func (p *podInit) drop() error {
	if p.UID != 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(p.GID); err != nil {
			return fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(p.UID); err != nil {
			return fmt.Errorf("setuid: %w", err)
		}
	}
	// Changing credentials cleared the parent-death signal: set it again,
	// so the pod dies with the test.
	if err := prctl(syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL)); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	if p.NoNewPrivs {
		if err := prctl(prSetNoNewPrivs, 1); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	return nil
}

// prSetNoNewPrivs is PR_SET_NO_NEW_PRIVS (linux/prctl.h), which package
// syscall does not name.
const prSetNoNewPrivs = 38

func prctl(option, arg uintptr) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, option, arg, 0); errno != 0 {
		return errno
	}
	return nil
}
