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
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/test/testenv"
)

// process is a keyward binary running a subcommand, its output kept for
// the test's log.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
	err  error // how it exited, once done is closed
}

// startProcess runs bin with args until stop is called or the test ends.
// Its output is logged when the test fails, or always with
// KEYWARD_TEST_LOGS set.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("KEYWARD_TEST_LOGS") != "" {
			t.Logf("%s (%s) output:\n%s", name, strings.Join(args, " "), tail(p.out.String(), 8<<10))
		}
	})
	return p
}

// stop sends SIGTERM, as the kubelet does when a pod is replaced, and
// fails the test unless the process exits cleanly within 30 s.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s had exited before it was stopped: %v", p.name, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("%s did not stop within 30s of SIGTERM", p.name)
	}
	if p.err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.name, p.err)
	}
}

func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits until url answers 200, failing at once if the process
// exits first.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		if p.exited() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		return ready(url)
	})
}

// ready reports why url does not answer 200, or nil.
func ready(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %d", url, resp.StatusCode)
	}
	return nil
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// port is addr's port.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func portNumber(t *testing.T, addr string) int {
	t.Helper()
	n, err := strconv.Atoi(port(addr))
	if err != nil {
		t.Fatalf("port of %s: %v", addr, err)
	}
	return n
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
