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

package e2e

// A real Traefik, built from the Go module proxy by hack/traefik.sh, in
// front of an upstream, with the forwardAuth middleware a user writes for
// keyward (docs/traefik.md) asking a verifier.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// EnvTraefik names the environment variable that, when set, is the Traefik
// binary to use instead of the one hack/traefik.sh builds.
const EnvTraefik = "KEYWARD_TRAEFIK"

// ForwardAuth is Traefik's forwardAuth middleware, the fields keyward's
// guide sets, named as in Traefik's Middleware CRD and file provider.
type ForwardAuth struct {
	Address             string   `json:"address"`
	AuthRequestHeaders  []string `json:"authRequestHeaders,omitempty"`
	AuthResponseHeaders []string `json:"authResponseHeaders,omitempty"`
	TrustForwardHeader  bool     `json:"trustForwardHeader"`
	MaxResponseBodySize *int64   `json:"maxResponseBodySize,omitempty"`
}

// TraefikOptions configures StartTraefik.
type TraefikOptions struct {
	// ForwardAuth is the middleware in front of the upstream; its Address
	// must be an http:// URL. Nil: no middleware, Traefik proxies alone.
	ForwardAuth *ForwardAuth
	// Upstream is the URL of the backend, e.g. an Echo server's URL.
	Upstream string
	// AccessLog writes Traefik's access log beside its log (AccessLog reads
	// it); benchmarks leave it off.
	AccessLog bool
}

// Traefik is a running Traefik with one router: every request to URL goes
// through the forwardAuth middleware to the upstream.
type Traefik struct {
	// URL is http://127.0.0.1:PORT of the "web" entryPoint.
	URL string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, once done is closed

	stopOnce sync.Once
}

// The names in the generated dynamic configuration.
const (
	traefikRouter     = "keyward-e2e"
	traefikMiddleware = "keyward"
	traefikService    = "upstream"
	// traefikReadyPath is routed to Traefik's ping service on the same
	// entryPoint: an OK there means the file provider's configuration, this
	// router's included, is being served.
	traefikReadyPath = "/.keyward-e2e/ready"
)

var traefikBinary struct {
	sync.Mutex
	path string
}

// TraefikBinary returns the path of the Traefik binary: $KEYWARD_TRAEFIK if
// set, else the one hack/traefik.sh builds under bin/traefik/ (`make
// traefik`, which `make test` runs first). It does not build: a build takes
// minutes, too long for a test to wait unannounced.
func TraefikBinary() (string, error) {
	if p := os.Getenv(EnvTraefik); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvTraefik, p, err)
		}
		return p, nil
	}
	traefikBinary.Lock()
	defer traefikBinary.Unlock()
	if traefikBinary.path != "" {
		return traefikBinary.path, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "traefik.sh")
	out, err := exec.Command(script, "--print").Output() // #nosec G204 -- the repository's script
	if err != nil {
		return "", fmt.Errorf("%s --print: %w", script, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("traefik not built (%w): run 'make traefik' (or 'make test', which builds it), or set %s", err, EnvTraefik)
	}
	traefikBinary.path = p
	return p, nil
}

// DocumentedForwardAuth returns the forwardAuth of the first Middleware in
// docs/traefik.md, as a user would copy it. A field this harness does not
// know is an error, so that the guide and the tests cannot drift apart
// silently.
func DocumentedForwardAuth() (ForwardAuth, error) {
	var fa ForwardAuth
	root, err := repoRoot()
	if err != nil {
		return fa, err
	}
	path := filepath.Join(root, "docs", "traefik.md")
	doc, err := os.ReadFile(path) // #nosec G304 -- the repository's guide
	if err != nil {
		return fa, err
	}
	for _, m := range yamlBlock.FindAllSubmatch(doc, -1) {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				ForwardAuth json.RawMessage `json:"forwardAuth"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(m[1], &obj); err != nil {
			return fa, fmt.Errorf("%s: a yaml block does not parse: %w", path, err)
		}
		if obj.Kind != "Middleware" || len(obj.Spec.ForwardAuth) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(obj.Spec.ForwardAuth))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fa); err != nil {
			return fa, fmt.Errorf("%s: the Middleware's forwardAuth: %w", path, err)
		}
		return fa, nil
	}
	return fa, fmt.Errorf("%s: no Middleware with forwardAuth in a yaml block", path)
}

var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// WithAddress returns fa asking address instead: the guide's middleware
// pointed at the verifier a test runs.
func (fa ForwardAuth) WithAddress(address string) *ForwardAuth {
	fa.Address = address
	return &fa
}

// StartTraefik writes Traefik's configuration into t.TempDir(), starts it
// and returns once its router serves. It calls t.Fatal on failure, and
// stops Traefik in t.Cleanup (logging its log if the test failed).
func StartTraefik(t testing.TB, opts TraefikOptions) *Traefik {
	t.Helper()
	tr, err := StartTraefikProcess(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Stop()
		if t.Failed() {
			t.Logf("traefik log (%s):\n%s", filepath.Join(tr.dir, "traefik.log"), tr.Log())
		}
	})
	return tr
}

// StartTraefikProcess is StartTraefik for programs that are not tests, such
// as the benchmarks: the configuration and logs go to dir (which must exist
// and stay until Traefik stops), errors are returned, and the caller stops
// Traefik with Stop.
func StartTraefikProcess(dir string, opts TraefikOptions) (*Traefik, error) {
	bin, err := TraefikBinary()
	if err != nil {
		return nil, fmt.Errorf("e2e: no traefik: %w", err)
	}
	var tr *Traefik
	// As with nginx: the port may be taken between choosing and binding.
	for attempt := 1; ; attempt++ {
		tr, err = startTraefik(bin, dir, opts)
		if err == nil || attempt == 3 || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	return tr, nil
}

func startTraefik(bin, dir string, opts TraefikOptions) (*Traefik, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	static, dynamic, err := traefikConfig(dir, port, opts)
	if err != nil {
		return nil, err
	}
	staticPath := filepath.Join(dir, "traefik.yaml")
	for path, b := range map[string][]byte{staticPath: static, filepath.Join(dir, "dynamic.yaml"): dynamic} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "traefik.log")
	out, err := os.Create(logPath) // #nosec G304 -- under the caller's directory
	if err != nil {
		return nil, err
	}
	defer out.Close()

	cmd := exec.Command(bin, "--configFile="+staticPath) // #nosec G204 -- the harness's traefik
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// Stopped (SIGTERM) should the process that started it die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	tr := &Traefik{URL: "http://127.0.0.1:" + strconv.Itoa(port), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		tr.err = cmd.Wait()
		close(tr.done)
	}()
	if err := tr.waitReady(30 * time.Second); err != nil {
		tr.Stop()
		log := tr.Log()
		if strings.Contains(log, "address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, fmt.Errorf("traefik (%s) did not start: %w\n%s", bin, err, log)
	}
	return tr, nil
}

// traefikConfig renders the static configuration (one entryPoint on
// 127.0.0.1:port, the file provider, no version check nor usage report) and
// the dynamic one (a router for every path through the middleware to the
// upstream, and the ready route).
func traefikConfig(dir string, port int, opts TraefikOptions) (static, dynamic []byte, err error) {
	if !isHTTPURL(opts.Upstream) {
		return nil, nil, fmt.Errorf("TraefikOptions.Upstream %q: want an http:// URL", opts.Upstream)
	}
	router := webRouter("PathPrefix(`/`)", traefikService)
	middlewares := map[string]any{}
	if fa := opts.ForwardAuth; fa != nil {
		if !isHTTPURL(fa.Address) {
			return nil, nil, fmt.Errorf("TraefikOptions.ForwardAuth.Address %q: want an http:// URL", fa.Address)
		}
		middlewares[traefikMiddleware] = map[string]any{"forwardAuth": fa}
		router["middlewares"] = []string{traefikMiddleware}
	}
	ready := webRouter("Path(`"+traefikReadyPath+"`)", "ping@internal")
	ready["priority"] = 1 << 20
	routing := map[string]any{
		"routers": map[string]any{traefikRouter: router, "ready": ready},
		"services": map[string]any{
			traefikService: map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]string{"url": opts.Upstream}}}},
		},
	}
	if len(middlewares) > 0 {
		routing["middlewares"] = middlewares
	}
	if dynamic, err = yaml.Marshal(struct {
		HTTP map[string]any `json:"http"`
	}{routing}); err != nil {
		return nil, nil, err
	}

	s := map[string]any{
		"global": map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		"entryPoints": map[string]any{"web": map[string]any{
			"address": "127.0.0.1:" + strconv.Itoa(port),
			// Stop within a second, idle keep-alive connections or not.
			"transport": map[string]any{"lifeCycle": map[string]any{"graceTimeOut": "1s"}},
		}},
		"ping":      map[string]any{"manualRouting": true},
		"providers": map[string]any{"file": map[string]any{"filename": filepath.Join(dir, "dynamic.yaml")}},
		"log":       map[string]any{"level": "INFO", "noColor": true},
	}
	if opts.AccessLog {
		s["accessLog"] = map[string]any{"filePath": filepath.Join(dir, "access.log")}
	}
	static, err = yaml.Marshal(s)
	return static, dynamic, err
}

// webRouter is a router on the "web" entryPoint.
func webRouter(rule, service string) map[string]any {
	return map[string]any{"entryPoints": []string{"web"}, "rule": rule, "service": service}
}

// isHTTPURL reports whether s is an absolute http:// URL.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "http" && u.Host != ""
}

// waitReady polls the ready route until it answers OK, the process exits or
// the timeout passes.
func (tr *Traefik) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-tr.done:
			return fmt.Errorf("exited: %v", tr.err)
		default:
		}
		resp, err := client.Get(tr.URL + traefikReadyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", traefikReadyPath, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops Traefik (SIGTERM, then SIGKILL to its process group after 10
// seconds) and waits for it to exit. It may be called more than once.
func (tr *Traefik) Stop() {
	tr.stopOnce.Do(func() {
		_ = tr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tr.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-tr.cmd.Process.Pid, syscall.SIGKILL)
			<-tr.done
		}
	})
}

// PID is Traefik's process id.
func (tr *Traefik) PID() int { return tr.cmd.Process.Pid }

// Log returns what Traefik logged so far.
func (tr *Traefik) Log() string { return readFile(filepath.Join(tr.dir, "traefik.log")) }

// AccessLog returns Traefik's access log (TraefikOptions.AccessLog).
func (tr *Traefik) AccessLog() string { return readFile(filepath.Join(tr.dir, "access.log")) }

// TraefikVersion returns what the harness's Traefik says its version is.
func TraefikVersion() string {
	bin, err := TraefikBinary()
	if err != nil {
		return "?"
	}
	out, _ := exec.Command(bin, "version").Output() // #nosec G204 -- the harness's traefik
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
