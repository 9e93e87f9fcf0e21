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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/keyward/keyward/test/testenv"
)

// Kubelet runs a Deployment's pod as a process, standing in for the
// kubelet, the container runtime, the CNI plugin and kube-proxy.
type Kubelet struct {
	// APIServer is the API server's host:port, reached from the host.
	APIServer string
	// CA is the API server's certificate authority (ca.crt in the pod).
	CA []byte
	// Entrypoint is the binary that stands in for the image's /keyward.
	Entrypoint string
	// Admin creates the ServiceAccount tokens.
	Admin kubernetes.Interface
	// Deviations collects where the pod differs from what a cluster runs.
	Deviations *Deviations
	// Logs, when set, also receives the pods' logs.
	Logs io.Writer
}

// Pod is one replica of a Deployment, running.
type Pod struct {
	Name       string
	IP         string
	Deployment *appsv1.Deployment
	// Args are the container's arguments, expanded.
	Args []string
	// Log is the container's stdout and stderr.
	Log *testenv.SyncBuffer

	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	stdin  *os.File
	fwd    net.Listener
	dir    string
	grace  time.Duration
}

// imageUser is the image's USER (Dockerfile: distroless nonroot).
const imageUser = 65532

// podNumber numbers the pods of this test binary: each gets its own /30.
var podNumber atomic.Int32

// Run starts one replica of d. It returns once the process runs in its
// namespaces with its network wired, not once it is ready (see Ready).
func (k *Kubelet) Run(ctx context.Context, d *appsv1.Deployment) (*Pod, error) {
	spec := &d.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		return nil, fmt.Errorf("%s: the harness runs pods of exactly one container", d.Name)
	}
	c := &spec.Containers[0]
	if len(c.Command) != 0 {
		return nil, fmt.Errorf("%s: a command replaces the image's entrypoint; the harness runs only /keyward", d.Name)
	}
	n := int(podNumber.Add(1))
	p := &Pod{
		Name:       fmt.Sprintf("%s-asshipped-%d", d.Name, n),
		IP:         fmt.Sprintf("10.251.%d.%d", n/64, n%64*4+2),
		Deployment: d,
		Log:        &testenv.SyncBuffer{},
		exited:     make(chan struct{}),
		grace:      30 * time.Second,
	}
	hostIP := fmt.Sprintf("10.251.%d.%d", n/64, n%64*4+1)
	if s := spec.TerminationGracePeriodSeconds; s != nil {
		p.grace = time.Duration(*s) * time.Second
	}
	init, err := k.podInit(ctx, d, p, hostIP)
	if err != nil {
		return nil, err
	}
	p.Args = init.Args
	if err := p.start(k, init); err != nil {
		p.Stop()
		return nil, err
	}
	if err := p.wire(k.APIServer, hostIP, n); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s: wiring the network: %w", p.Name, err)
	}
	// The pod's init executes the entrypoint once it reads this byte.
	_, err = p.stdin.Write([]byte{1})
	_ = p.stdin.Close()
	if err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// podInit resolves the container as the kubelet and the container runtime
// would: the token, the environment, the arguments, the volumes and the
// security context.
func (k *Kubelet) podInit(ctx context.Context, d *appsv1.Deployment, p *Pod, hostIP string) (*podInit, error) {
	spec := &d.Spec.Template.Spec
	c := &spec.Containers[0]
	dir, err := os.MkdirTemp("", "keyward-asshipped-")
	if err != nil {
		return nil, err
	}
	p.dir = dir
	sa := filepath.Join(dir, "serviceaccount")
	if err := k.writeToken(ctx, d.Namespace, spec.ServiceAccountName, sa); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	facts := podFacts{name: p.Name, namespace: d.Namespace, ip: p.IP, hostIP: hostIP, node: "asshipped", template: &d.Spec.Template}
	env, err := containerEnv(c, facts, k.Deviations)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	env = append(env,
		// What kube-proxy answers for the kubernetes Service, here
		// forwarded by the harness inside the pod (see wire).
		"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		// The container runtime's: HOSTNAME, and HOME from the image's
		// /etc/passwd entry of its user (distroless: nonroot).
		"HOSTNAME="+p.Name, "HOME=/home/nonroot",
		// The image's.
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	)
	emptyDirs, err := emptyDirs(spec, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	uid, gid, err := runAs(spec, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	sc := c.SecurityContext
	return &podInit{
		Hostname:       p.Name,
		ServiceAccount: sa,
		EmptyDirs:      emptyDirs,
		ReadOnlyRoot:   sc != nil && ptr.Deref(sc.ReadOnlyRootFilesystem, false),
		UID:            uid, GID: gid,
		NoNewPrivs: sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		Path:       k.Entrypoint,
		Args:       expand(c.Args, envMap(env)),
		Env:        env,
	}, nil
}

// writeToken writes what the kubelet projects at serviceAccountDir: a
// token of the ServiceAccount from the TokenRequest API (an hour and
// seven seconds, the kubelet's request), the cluster's CA and the
// namespace.
func (k *Kubelet) writeToken(ctx context.Context, namespace, sa, dir string) error {
	if sa == "" {
		sa = "default"
	}
	tr, err := k.Admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3607)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", namespace, sa, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": k.CA, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// podNamespaces are the namespaces each pod gets of its own.
const podNamespaces = syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC

// start starts the pod's init (this test binary) in new mount, network,
// UTS and IPC namespaces.
func (p *Pod) start(k *Kubelet, init *podInit) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := json.Marshal(init)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	p.cmd = exec.Command(self)
	p.cmd.Env = []string{envPodInit + "=" + string(b)}
	p.cmd.Stdin = r
	var out io.Writer = p.Log
	if k.Logs != nil {
		out = io.MultiWriter(p.Log, &prefixWriter{prefix: p.Name + ": ", w: k.Logs})
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: podNamespaces,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := p.cmd.Start(); err != nil {
		_ = w.Close()
		return fmt.Errorf("%s: starting the pod: %w", p.Name, err)
	}
	p.stdin = w
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// wire gives the pod what a CNI plugin would (a veth pair, the pod's
// address, loopback up) and what kube-proxy would for the kubernetes
// Service: 127.0.0.1:443 inside the pod leads to the API server.
func (p *Pod) wire(apiServer, hostIP string, n int) error {
	pid := strconv.Itoa(p.cmd.Process.Pid)
	hostIf := fmt.Sprintf("kwas%dx%d", os.Getpid()%100000, n)
	host := func(args ...string) []string { return append([]string{"ip"}, args...) }
	pod := func(args ...string) []string {
		return append([]string{"nsenter", "--net=/proc/" + pid + "/ns/net", "ip"}, args...)
	}
	for _, args := range [][]string{
		host("link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", pid),
		host("addr", "add", hostIP+"/30", "dev", hostIf),
		host("link", "set", hostIf, "up"),
		pod("addr", "add", p.IP+"/30", "dev", "eth0"),
		pod("link", "set", "eth0", "up"),
		pod("link", "set", "lo", "up"),
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w: %s", args, err, out)
		}
	}
	l, err := listenIn(p.cmd.Process.Pid, "127.0.0.1:443")
	if err != nil {
		return err
	}
	p.fwd = l
	go forward(l, apiServer)
	return nil
}

// listenIn listens on addr inside the network namespace of process pid.
// A socket stays in the namespace it was made in; the thread that made it
// goes back to the host's namespace, or dies if it cannot.
func listenIn(pid int, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer host.Close()
		pod, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer pod.Close()
		if err := setns(pod); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := setns(host); err != nil {
			// The thread stays locked and ends with this goroutine.
			if l != nil {
				_ = l.Close()
			}
			ch <- result{err: fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{l: l, err: lerr}
	}()
	r := <-ch
	return r.l, r.err
}

func setns(f *os.File) error {
	if _, _, errno := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
		return errno
	}
	return nil
}

// forward copies each connection accepted on l to target, both ways.
func forward(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

// Exited returns the process's exit error once it has exited, else nil.
func (p *Pod) Exited() error {
	select {
	case <-p.exited:
		if p.err == nil {
			return fmt.Errorf("%s exited", p.Name)
		}
		return fmt.Errorf("%s exited: %w", p.Name, p.err)
	default:
		return nil
	}
}

// Stop stops the pod as the kubelet does: SIGTERM, then SIGKILL after
// terminationGracePeriodSeconds.
func (p *Pod) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(p.grace):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if p.fwd != nil {
		_ = p.fwd.Close()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// prefixWriter prefixes each Write (a log line, from zap) with a pod's name.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	if _, err := w.w.Write(append([]byte(w.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
