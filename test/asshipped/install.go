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
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/keyward/keyward/internal/kube"
)

// Kustomize renders a kustomization directory with kubectl's kustomize, as
// "kubectl apply -k" would.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	out, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("kubectl kustomize %s: %w\n%s", dir, err, ee.Stderr)
		}
		return nil, err
	}
	return kube.DecodeYAML(out)
}

// HelmTemplate renders a chart with its default values, as "helm install"
// would, into namespace.
func HelmTemplate(helm, chart, release, namespace string) ([]*unstructured.Unstructured, error) {
	out, err := exec.Command(helm, "template", release, chart, "--namespace", namespace, "--include-crds").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("helm template %s: %w\n%s", chart, err, ee.Stderr)
		}
		return nil, err
	}
	return kube.DecodeYAML(out)
}

// Rule names one verb of one RBAC rule of a shipped role.
type Rule struct {
	// Kind and Name are the role's: Role or ClusterRole.
	Kind, Name string
	// APIGroup, Resource and Verb select the verb to take away.
	APIGroup, Resource, Verb string
}

func (r Rule) String() string {
	g := r.APIGroup
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s %s: %s on %s/%s", r.Kind, r.Name, r.Verb, g, r.Resource)
}

// Without returns objs with r's verb on r's resource taken out of r's role
// (the other resources and verbs of its rules stay), and an error if no
// rule granted it.
func Without(objs []*unstructured.Unstructured, r Rule) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(objs))
	found := false
	for i, u := range objs {
		out[i] = u
		if u.GetKind() != r.Kind || u.GetName() != r.Name {
			continue
		}
		u = u.DeepCopy()
		rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
		var kept []any
		for _, raw := range rules {
			rule, _ := raw.(map[string]any)
			split, ok := r.takeFrom(rule)
			found = found || ok
			kept = append(kept, split...)
		}
		if err := unstructured.SetNestedSlice(u.Object, kept, "rules"); err != nil {
			return nil, err
		}
		out[i] = u
	}
	if !found {
		return nil, fmt.Errorf("no rule grants %s", r)
	}
	return out, nil
}

// BindingReviews returns, for each ServiceAccount bound by a RoleBinding or
// ClusterRoleBinding of objs, a SubjectAccessReview of the first rule of
// the role it is bound to: allowed once the API server's authorizer has
// the binding.
func BindingReviews(objs []*unstructured.Unstructured) ([]*authorizationv1.SubjectAccessReview, error) {
	roles := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		if u.GetKind() == "Role" || u.GetKind() == "ClusterRole" {
			roles[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = u
		}
	}
	var reviews []*authorizationv1.SubjectAccessReview
	for _, u := range objs {
		if u.GetKind() != "RoleBinding" && u.GetKind() != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			return nil, err
		}
		ns := b.Namespace
		if b.RoleRef.Kind == "ClusterRole" {
			ns = ""
		}
		role := roles[b.RoleRef.Kind+"/"+ns+"/"+b.RoleRef.Name]
		if role == nil {
			continue // a built-in role, or one shipped elsewhere
		}
		attrs, err := firstRule(role)
		if err != nil {
			return nil, err
		}
		if attrs == nil {
			continue
		}
		attrs.Namespace = b.Namespace
		for _, s := range b.Subjects {
			if s.Kind != rbacv1.ServiceAccountKind {
				continue
			}
			reviews = append(reviews, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + s.Namespace + ":" + s.Name,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + s.Namespace, "system:authenticated"},
				ResourceAttributes: attrs,
			}})
		}
	}
	return reviews, nil
}

// firstRule returns the request that the first rule of role allows, or
// nil when it names no resource.
func firstRule(role *unstructured.Unstructured) (*authorizationv1.ResourceAttributes, error) {
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	if len(rules) == 0 {
		return nil, nil
	}
	var r rbacv1.PolicyRule
	m, _ := rules[0].(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &r); err != nil {
		return nil, err
	}
	if len(r.Resources) == 0 || len(r.Verbs) == 0 {
		return nil, nil
	}
	resource, sub, _ := strings.Cut(r.Resources[0], "/")
	attrs := &authorizationv1.ResourceAttributes{Verb: r.Verbs[0], Resource: resource, Subresource: sub}
	if len(r.APIGroups) > 0 {
		attrs.Group = r.APIGroups[0]
	}
	if len(r.ResourceNames) > 0 {
		attrs.Name = r.ResourceNames[0]
	}
	return attrs, nil
}

// takeFrom returns rule without r's verb on r's resource: the rule as it
// is when it does not grant that; else the rule for its other resources,
// and one for r's resource with the other verbs, when there are any.
func (r Rule) takeFrom(rule map[string]any) ([]any, bool) {
	groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
	resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
	verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
	if !slices.Equal(groups, []string{r.APIGroup}) || !slices.Contains(resources, r.Resource) || !slices.Contains(verbs, r.Verb) {
		return []any{rule}, false
	}
	var out []any
	if others := slices.DeleteFunc(slices.Clone(resources), func(s string) bool { return s == r.Resource }); len(others) > 0 {
		o := runtime.DeepCopyJSON(rule)
		_ = unstructured.SetNestedStringSlice(o, others, "resources")
		out = append(out, o)
	}
	if rest := slices.DeleteFunc(slices.Clone(verbs), func(v string) bool { return v == r.Verb }); len(rest) > 0 {
		o := runtime.DeepCopyJSON(rule)
		_ = unstructured.SetNestedStringSlice(o, []string{r.Resource}, "resources")
		_ = unstructured.SetNestedStringSlice(o, rest, "verbs")
		out = append(out, o)
	}
	return out, true
}

// auditEvent is the part of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	} `json:"responseStatus"`
}

func (e auditEvent) String() string {
	what := ""
	if o := e.ObjectRef; o != nil {
		what = o.Resource
		if o.APIGroup != "" {
			what += "." + o.APIGroup
		}
		if o.Subresource != "" {
			what += "/" + o.Subresource
		}
		if o.Namespace != "" {
			what += " in " + o.Namespace
		}
		if o.Name != "" {
			what += " named " + o.Name
		}
	}
	code := int32(0)
	if e.ResponseStatus != nil {
		code = e.ResponseStatus.Code
	}
	return fmt.Sprintf("%s %s %s: %d", e.User.Username, e.Verb, what, code)
}

// AuditPolicy records, at level Metadata, every request of the
// ServiceAccounts in namespace, and nothing else.
func AuditPolicy(namespace string) string {
	return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:` + namespace + `"]
- level: None
`
}

// readAudit reads the API server's audit log (JSON lines).
func readAudit(path string) ([]auditEvent, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a line being written
		}
		if e.Stage == "ResponseComplete" {
			events = append(events, e)
		}
	}
	return events, sc.Err()
}

// refused returns the events of users with prefix answered 403.
func refused(events []auditEvent, prefix string) []auditEvent {
	var out []auditEvent
	for _, e := range events {
		if strings.HasPrefix(e.User.Username, prefix) && e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
			out = append(out, e)
		}
	}
	return out
}
