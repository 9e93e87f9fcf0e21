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

import (
	"bytes"
	"errors"
	"fmt"
	"net"
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
)

// NginxOptions configures StartNginx.
type NginxOptions struct {
	// AuthURL is the auth-url annotation: the verifier URL for this location,
	// e.g. http://127.0.0.1:18080/v1/verify/ns/group. Its host must be an IP
	// address (the generated config has no resolver). Required unless
	// AuthReturn200.
	AuthURL string
	// Upstream is the URL of the backend, e.g. an Echo server's URL; only its
	// host:port is used (ingress-nginx proxies to the Service's endpoints with
	// the request URI unchanged).
	Upstream string
	// ResponseHeaders is the auth-response-headers annotation: headers copied
	// from the verifier's 200 answer onto the request sent upstream, e.g.
	// X-Auth-Application, X-Auth-Key, X-Auth-Scopes, X-Auth-Namespace,
	// X-Auth-External-ID. A listed header the verifier does not send is removed
	// from the upstream request, whatever the client sent.
	ResponseHeaders []string
	// AuthReturn200 makes the auth location `return 200;` instead of proxying
	// to AuthURL: the cost of nginx and auth_request alone, the floor for
	// benchmarks.
	AuthReturn200 bool
	// WorkerProcesses is nginx's worker_processes; 0 means 1.
	WorkerProcesses int

	// AuthMethod is the auth-method annotation (unset by default). When set,
	// ingress-nginx adds proxy_method and the X-Original-URI and X-Scheme
	// headers to the auth subrequest.
	AuthMethod string
	// AuthKeepalive is the auth-keepalive annotation (0, ingress-nginx's
	// default, means a new connection to the verifier per subrequest). When
	// set, the verifier is reached through an upstream block with that many
	// idle keepalive connections. ingress-nginx then issues the subrequest from
	// Lua (ngx.location.capture); this harness keeps auth_request, which
	// reuses a connection only when the verifier's answer has no body.
	AuthKeepalive int
	// ExposeAuthReason adds the verifier's X-Auth-Reason to the client's
	// response, 401 and 403 included. Not ingress-nginx's behaviour (which
	// passes only WWW-Authenticate, on 401); what a configuration-snippet
	// would add.
	ExposeAuthReason bool

	// Plain renders a minimal plain nginx auth_request configuration instead
	// of ingress-nginx's: "location / { auth_request /auth; proxy_pass
	// upstream; }" and an internal /auth location that proxies to AuthURL
	// with the body off and only X-Original-URI $request_uri and
	// X-Original-Method $request_method set, passing every client header on
	// (nginx's documented example, docs/ingress-nginx.md "plain nginx").
	// ResponseHeaders and ExposeAuthReason apply; the other ingress-nginx
	// options do not.
	Plain bool
	// ClearClientStatements, with Plain, adds the hardening
	// docs/ingress-nginx.md recommends: the headers a client could send to
	// state another original request (X-Original-URL, X-Original-URI,
	// X-Forwarded-Uri, X-Forwarded-Method and the method-override headers)
	// are cleared toward the upstream, and X-Original-URL, X-Forwarded-Uri
	// and X-Forwarded-Method toward the verifier too; the method overrides
	// still reach the verifier, which refuses one naming another method.
	ClearClientStatements bool
	// URIHeader, for tests only, names a header added to the auth
	// subrequest carrying nginx's normalised $uri of the original request;
	// ParseURIHeader reads it. Empty: no such header.
	URIHeader string
}

// URIHeaderControl is the URIHeader value for a $uri holding a control
// character, which cannot travel in a header.
const URIHeaderControl = "(control)"

// ParseURIHeader reads a NginxOptions.URIHeader value: nginx's $uri, and
// false when the value is not one nginx sent. $uri travels between '<'
// and '>', which keep its edge spaces from being trimmed as a header
// value's; a $uri holding a control character is URIHeaderControl.
func ParseURIHeader(v string) (string, bool) {
	if v == URIHeaderControl {
		return v, true
	}
	if len(v) < 2 || v[0] != '<' || v[len(v)-1] != '>' {
		return "", false
	}
	return v[1 : len(v)-1], true
}

// Nginx is a running nginx configured like ingress-nginx with auth-url.
type Nginx struct {
	// URL is http://127.0.0.1:PORT of the front server.
	URL string

	dir    string
	config string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // the process's exit status, once done is closed

	stopOnce sync.Once
}

// StartNginx renders the configuration into t.TempDir(), starts nginx in the
// foreground as the current user and returns once it answers on its port.
// It calls t.Fatal on failure, and stops nginx in t.Cleanup (logging the
// error log if the test failed).
func StartNginx(t testing.TB, opts NginxOptions) *Nginx {
	t.Helper()
	bin, err := NginxBinary()
	if err != nil {
		t.Fatalf("e2e: no nginx: %v", err)
	}
	dir := t.TempDir()
	var n *Nginx
	// The port is chosen by binding :0 and closing; another process may take
	// it before nginx binds, so try a few times.
	for attempt := 1; ; attempt++ {
		n, err = startNginx(bin, dir, opts)
		if err == nil || attempt == 3 || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nginx error log (%s):\n%s", filepath.Join(n.dir, "logs", "error.log"), n.ErrorLog())
		}
	})
	return n
}

var errAddrInUse = errors.New("address already in use")

func startNginx(bin, dir string, opts NginxOptions) (*Nginx, error) {
	data, err := newConfData(dir, opts)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data.Port = port

	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	var conf bytes.Buffer
	tmpl := confTemplate
	if opts.Plain {
		tmpl = plainTemplate
	}
	if err := tmpl.Execute(&conf, data); err != nil {
		return nil, fmt.Errorf("render nginx.conf: %w", err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	// Truncate logs of an earlier attempt.
	for _, f := range []string{"error.log", "access.log"} {
		_ = os.Remove(filepath.Join(dir, "logs", f))
	}
	stderrPath := filepath.Join(dir, "logs", "stderr.log")
	out, err := os.Create(stderrPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()

	args := []string{"-p", dir + "/", "-c", confPath, "-g", "daemon off;"}
	if supportsErrorLogFlag(bin) {
		args = append(args, "-e", filepath.Join(dir, "logs", "error.log"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so that Stop can reach the workers too; and
	// stopped (SIGTERM: the master stops its workers) should the process
	// that started it die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	n := &Nginx{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		dir:    dir,
		config: conf.String(),
		cmd:    cmd,
		done:   make(chan struct{}),
	}
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()

	if err := n.waitReady(15 * time.Second); err != nil {
		n.Stop()
		logs := n.ErrorLog() + readFile(stderrPath)
		if strings.Contains(logs, "Address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, fmt.Errorf("nginx (%s) did not start: %w\n%s", bin, err, logs)
	}
	return n, nil
}

// newConfData checks opts and derives the template's data from them.
func newConfData(dir string, opts NginxOptions) (confData, error) {
	d := confData{
		Dir:              dir,
		WorkerProcesses:  opts.WorkerProcesses,
		AuthPath:         authLocation(ingressPath, ingressPathType),
		AuthReturn200:    opts.AuthReturn200,
		AuthMethod:       opts.AuthMethod,
		AuthKeepalive:    opts.AuthKeepalive,
		ExposeAuthReason: opts.ExposeAuthReason,
		ClearStatements:  opts.ClearClientStatements,
		URIHeader:        opts.URIHeader,
	}
	if opts.Plain && (opts.AuthReturn200 || opts.AuthMethod != "" || opts.AuthKeepalive != 0) {
		return d, fmt.Errorf("NginxOptions.Plain: AuthReturn200, AuthMethod and AuthKeepalive are ingress-nginx's")
	}
	if opts.ClearClientStatements && !opts.Plain {
		return d, fmt.Errorf("NginxOptions.ClearClientStatements needs Plain")
	}
	if opts.URIHeader != "" && !validHeader.MatchString(opts.URIHeader) {
		return d, fmt.Errorf("NginxOptions.URIHeader: invalid header name %q", opts.URIHeader)
	}
	if d.WorkerProcesses <= 0 {
		d.WorkerProcesses = 1
	}
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody and could not enter the
		// test's 0700 temporary directory.
		d.User = "root"
	}
	d.RlimitNofile, d.WorkerConnections = fileLimits()

	up, err := url.Parse(opts.Upstream)
	if err != nil || up.Host == "" {
		return d, fmt.Errorf("NginxOptions.Upstream %q: not an absolute URL", opts.Upstream)
	}
	d.UpstreamServer = up.Host

	if opts.AuthMethod != "" && !validMethod.MatchString(opts.AuthMethod) {
		return d, fmt.Errorf("NginxOptions.AuthMethod %q: not a method", opts.AuthMethod)
	}
	for i, h := range opts.ResponseHeaders {
		// ingress-nginx's authreq annotation parser accepts ^[a-zA-Z\d\-_]+$.
		if !validHeader.MatchString(h) {
			return d, fmt.Errorf("NginxOptions.ResponseHeaders: invalid header name %q", h)
		}
		d.ResponseHeaders = append(d.ResponseHeaders, responseHeader{
			Index: i,
			Name:  h,
			Var:   strings.ReplaceAll(strings.ToLower(h), "-", "_"),
		})
	}

	if opts.AuthReturn200 && opts.AuthURL == "" {
		d.AuthURL = "(none: AuthReturn200)"
		return d, nil
	}
	au, err := url.Parse(opts.AuthURL)
	if err != nil || au.Scheme != "http" || au.Host == "" {
		return d, fmt.Errorf("NginxOptions.AuthURL %q: want an http:// URL", opts.AuthURL)
	}
	if net.ParseIP(au.Hostname()) == nil {
		return d, fmt.Errorf("NginxOptions.AuthURL %q: the host must be an IP address (the config has no resolver)", opts.AuthURL)
	}
	if strings.ContainsAny(opts.AuthURL, " \t\n;{}\"'$") {
		return d, fmt.Errorf("NginxOptions.AuthURL %q: characters nginx would misread", opts.AuthURL)
	}
	d.AuthURL = opts.AuthURL
	d.AuthHost = au.Hostname()
	d.AuthServer = au.Host
	// ingress-nginx's buildAuthUpstreamName: server hostname + "-" + the auth
	// location without its leading "/_"; changeHostPort swaps it in.
	d.AuthUpstream = "_-" + d.AuthPath[2:]
	target := *au
	target.Host = d.AuthUpstream
	d.AuthTarget = target.String()
	return d, nil
}

var (
	validHeader = regexp.MustCompile(`^[a-zA-Z\d\-_]+$`)
	validMethod = regexp.MustCompile(`^[A-Z]+$`)
)

// fileLimits returns worker_rlimit_nofile and worker_connections: the hard
// limit on open files (capped at 1M; Go raises its own soft limit but children
// get the original one back) and ingress-nginx's default of 16384
// connections, or fewer if the limit cannot hold them.
func fileLimits() (nofile, conns int) {
	nofile = 1 << 20
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < uint64(nofile) {
		nofile = int(lim.Max)
	}
	conns = 16384
	if conns > nofile/2 {
		conns = nofile / 2
	}
	return nofile, conns
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errorLogFlag struct {
	sync.Mutex
	known map[string]bool
}

// supportsErrorLogFlag reports whether bin knows -e (nginx >= 1.19.5), which
// points the error log used before the configuration is read away from the
// compiled-in path.
func supportsErrorLogFlag(bin string) bool {
	errorLogFlag.Lock()
	defer errorLogFlag.Unlock()
	if v, ok := errorLogFlag.known[bin]; ok {
		return v
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	v := bytes.Contains(out, []byte("-e filename"))
	if errorLogFlag.known == nil {
		errorLogFlag.known = map[string]bool{}
	}
	errorLogFlag.known[bin] = v
	return v
}

// waitReady polls /healthz until nginx answers, the process exits or the
// timeout passes.
func (n *Nginx) waitReady(timeout time.Duration) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-n.done:
			return fmt.Errorf("exited: %v", n.err)
		default:
		}
		resp, err := client.Get(n.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Server") == "nginx" {
				return nil
			}
			err = fmt.Errorf("/healthz: %s, Server %q", resp.Status, resp.Header.Get("Server"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts nginx down (fast shutdown, SIGTERM; SIGKILL to the whole process
// group after 10s) and waits for it. It is safe to call more than once.
func (n *Nginx) Stop() {
	n.stopOnce.Do(func() {
		pgid := n.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			// The master is not reaped yet, so its group is still ours.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-n.done
		}
		// On SIGTERM the master waits for its workers before it exits.
	})
}

// ErrorLog returns the contents of nginx's error log, for diagnostics.
func (n *Nginx) ErrorLog() string { return readFile(filepath.Join(n.dir, "logs", "error.log")) }

// AccessLog returns the contents of nginx's access log (ingress-nginx's
// upstreaminfo format; the auth subrequests are not logged, as in
// ingress-nginx's auth location).
func (n *Nginx) AccessLog() string { return readFile(filepath.Join(n.dir, "logs", "access.log")) }

// Config returns the nginx.conf this instance runs with.
func (n *Nginx) Config() string { return n.config }

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}
