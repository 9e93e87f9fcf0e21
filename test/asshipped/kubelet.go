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
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Deviations lists where the harness runs a pod otherwise than a cluster
// would, each once.
type Deviations struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

// Add records a deviation.
func (d *Deviations) Add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if !d.seen[s] {
		d.seen[s] = true
		d.list = append(d.list, s)
	}
}

// List returns the deviations in the order first seen.
func (d *Deviations) List() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.list...)
}

// podFacts are what the downward API exposes of a pod.
type podFacts struct {
	name, namespace, ip, hostIP, node string
	template                          *corev1.PodTemplateSpec
}

func (f podFacts) field(path string) (string, error) {
	m := f.template.ObjectMeta
	switch path {
	case "metadata.name":
		return f.name, nil
	case "metadata.namespace":
		return f.namespace, nil
	case "spec.nodeName":
		return f.node, nil
	case "spec.serviceAccountName":
		return f.template.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return f.ip, nil
	case "status.hostIP", "status.hostIPs":
		return f.hostIP, nil
	}
	for prefix, values := range map[string]map[string]string{"metadata.labels": m.Labels, "metadata.annotations": m.Annotations} {
		if k, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(k, "']") {
			return values[strings.TrimSuffix(k, "']")], nil
		}
	}
	return "", fmt.Errorf("fieldRef %s: not resolved by the harness", path)
}

// containerEnv resolves the container's environment as the kubelet does:
// values expanded with $(VAR) of the variables before them, the downward
// API's fieldRef and resourceFieldRef resolved.
func containerEnv(c *corev1.Container, f podFacts, dev *Deviations) ([]string, error) {
	if len(c.EnvFrom) != 0 {
		return nil, fmt.Errorf("container %s: envFrom is not resolved by the harness", c.Name)
	}
	var env []string
	for _, e := range c.Env {
		v, err := envValue(c, e, f, envMap(env), dev)
		if err != nil {
			return nil, fmt.Errorf("container %s, env %s: %w", c.Name, e.Name, err)
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

func envValue(c *corev1.Container, e corev1.EnvVar, f podFacts, defined map[string]string, dev *Deviations) (string, error) {
	switch {
	case e.ValueFrom == nil:
		return expandOne(e.Value, defined), nil
	case e.ValueFrom.FieldRef != nil:
		return f.field(e.ValueFrom.FieldRef.FieldPath)
	case e.ValueFrom.ResourceFieldRef != nil:
		r := e.ValueFrom.ResourceFieldRef
		if r.ContainerName != "" && r.ContainerName != c.Name {
			return "", fmt.Errorf("resourceFieldRef of container %s", r.ContainerName)
		}
		v, err := resourceValue(c.Resources, r)
		if err == nil {
			dev.Add("%s=%s comes from the container's %s, as the downward API gives it, but no cgroup enforces that limit", e.Name, v, r.Resource)
		}
		return v, err
	}
	return "", fmt.Errorf("only value, fieldRef and resourceFieldRef are resolved by the harness")
}

// resourceValue is the downward API's value of a container resource: the
// quantity divided by the divisor (default 1), rounded up.
func resourceValue(res corev1.ResourceRequirements, r *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(r.Resource, ".")
	if !ok {
		return "", fmt.Errorf("resource %q", r.Resource)
	}
	list := res.Limits
	if kind == "requests" {
		list = res.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		// The kubelet would give the node's allocatable.
		return "", fmt.Errorf("%s is not set: the kubelet would give the node's allocatable, which the harness has not", r.Resource)
	}
	divisor := r.Divisor
	if divisor.IsZero() {
		divisor.Set(1)
	}
	v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
	return strconv.FormatInt(v, 10), nil
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// expand expands $(VAR) in the container's arguments as the kubelet does.
func expand(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandOne(a, env)
	}
	return out
}

// expandOne is Kubernetes' expansion: $(VAR) becomes VAR's value when VAR
// is defined and stays as written otherwise; $$ is a literal $.
func expandOne(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// emptyDirs returns the mount paths of the container's emptyDir volumes;
// any other kind of volume is refused.
func emptyDirs(spec *corev1.PodSpec, c *corev1.Container) ([]string, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	var paths []string
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok || v.EmptyDir == nil {
			return nil, fmt.Errorf("volume %s: only emptyDir volumes are mounted by the harness", m.Name)
		}
		paths = append(paths, m.MountPath)
	}
	return paths, nil
}

// runAs returns the user and group the container runs as: its
// securityContext's, else the pod's, else the image's USER.
func runAs(spec *corev1.PodSpec, c *corev1.Container) (uid, gid int, err error) {
	uid, gid = imageUser, imageUser
	nonRoot := false
	if s := spec.SecurityContext; s != nil {
		uid = int(ptr.Deref(s.RunAsUser, int64(uid)))
		gid = int(ptr.Deref(s.RunAsGroup, int64(gid)))
		nonRoot = ptr.Deref(s.RunAsNonRoot, false)
	}
	if s := c.SecurityContext; s != nil {
		uid = int(ptr.Deref(s.RunAsUser, int64(uid)))
		gid = int(ptr.Deref(s.RunAsGroup, int64(gid)))
		nonRoot = ptr.Deref(s.RunAsNonRoot, nonRoot)
	}
	if nonRoot && uid == 0 {
		return 0, 0, fmt.Errorf("container %s: runAsNonRoot with user 0: the kubelet refuses to start it", c.Name)
	}
	return uid, gid, nil
}

// containerPort resolves a port by name or number against the container's
// declared ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		return p.IntVal, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, p.StrVal)
}

// Ready runs the container's readiness probe once, as the kubelet does at
// each period: nil when it succeeds.
func (p *Pod) Ready(ctx context.Context) error {
	if err := p.Exited(); err != nil {
		return err
	}
	c := &p.Deployment.Spec.Template.Spec.Containers[0]
	probe := c.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		return fmt.Errorf("%s: the harness runs httpGet readiness probes only", p.Name)
	}
	port, err := containerPort(c, probe.HTTPGet.Port)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(probe.TimeoutSeconds, 1))*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s:%d%s", p.IP, port, probe.HTTPGet.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := direct.Do(req)
	if err != nil {
		return fmt.Errorf("%s: readiness probe: %w", p.Name, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s: readiness probe %s: %s", p.Name, url, resp.Status)
	}
	return nil
}

// direct reaches pods' addresses without any proxy of the environment,
// as the kubelet and an ingress controller do.
var direct = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}

// EndpointSlice is what the EndpointSlice controller writes for svc once
// the pod is ready, if svc selects the pod: the pod's address and each
// Service port's target port resolved against the container. It returns
// nil when svc does not select the pod.
func (p *Pod) EndpointSlice(svc *corev1.Service) (*discoveryv1.EndpointSlice, error) {
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Deployment.Spec.Template.Labels)) {
		return nil, nil
	}
	c := &p.Deployment.Spec.Template.Spec.Containers[0]
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: svc.Name + "-asshipped",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   "asshipped.test.keyward.dev",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{p.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To("asshipped"),
		}},
	}
	for _, sp := range svc.Spec.Ports {
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port)
		}
		port, err := containerPort(c, target)
		if err != nil {
			return nil, fmt.Errorf("port %s of Service %s: %w", sp.Name, svc.Name, err)
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Port: ptr.To(port), Protocol: ptr.To(sp.Protocol), AppProtocol: sp.AppProtocol,
		})
	}
	sort.Slice(es.Ports, func(i, j int) bool { return *es.Ports[i].Name < *es.Ports[j].Name })
	return es, nil
}
