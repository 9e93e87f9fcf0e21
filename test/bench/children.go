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
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a server process this program started: the floor or a verifier.
// It runs until its stdin closes, so it never outlives the benchmark.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// startChild runs this program's executable with args and decodes the JSON
// line the child prints once it serves into info.
func startChild(name string, info any, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(name, info, self, args...)
}

// startProcess runs bin with args; the first line of its stdout is decoded
// into info (when info is not nil).
func startProcess(name string, info any, bin string, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...) // #nosec G204 -- this program's own executable or the keyward binary it built
	cmd.Stderr = &prefixWriter{prefix: name + ": ", w: os.Stderr}
	// A child dies with the benchmark, wherever either is in its run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	if info == nil {
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		return c, nil
	}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			c.stop()
			return nil, fmt.Errorf("%s exited before it was ready", name)
		}
		if err := json.Unmarshal(line, info); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: %q: %w", name, line, err)
		}
	case <-time.After(2 * time.Minute):
		c.stop()
		return nil, fmt.Errorf("%s: not ready after 2 minutes", name)
	}
	return c, nil
}

// stop closes the child's stdin, which ends it, and kills it (its own pid
// only) if it has not exited after 15 seconds.
func (c *child) stop() {
	_ = c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(15 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// waitStdin blocks until stdin closes: the parent stopped or went away.
func waitStdin() {
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// printJSON writes v as one line on stdout: a child's report to its parent.
func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", b)
	return err
}

// prefixWriter prefixes what a child writes to stderr with its name.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.mid {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i < len(b) {
			i++
			p.mid = false
		} else {
			p.mid = true
		}
		if _, err := p.w.Write(b[:i]); err != nil {
			return 0, err
		}
		b = b[i:]
	}
	return n, nil
}

// waitHTTP polls url every interval until it answers 200, and returns when
// it first did.
func waitHTTP(url string, interval, timeout time.Duration) (time.Time, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url) // #nosec G107 -- a loopback address this program bound
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s: not 200 after %s: %w", url, timeout, err)
		}
		time.Sleep(interval)
	}
}
