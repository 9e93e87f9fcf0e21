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

package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

func createUnstructured(env *testenv.Env, obj map[string]any) error {
	return env.Client.Create(context.Background(), &unstructured.Unstructured{Object: obj})
}

// table asks the API server for the Table that kubectl get renders.
func table(t *testing.T, resource, namespace string) *metav1.Table {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.GroupVersion = &keywardv1alpha1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rc.Get().Namespace(namespace).Resource(resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatalf("GET %s as Table: %v", resource, err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(body, &tbl); err != nil {
		t.Fatal(err)
	}
	return &tbl
}

func columnNames(tbl *metav1.Table, includeWide bool) []string {
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 || includeWide {
			names = append(names, c.Name)
		}
	}
	return names
}

// cells maps column name to the cell of the row for the named object.
func cells(t *testing.T, tbl *metav1.Table, name string) map[string]any {
	t.Helper()
	for _, row := range tbl.Rows {
		if fmt.Sprint(row.Cells[0]) == name {
			out := map[string]any{}
			for i, c := range tbl.ColumnDefinitions {
				out[c.Name] = row.Cells[i]
			}
			return out
		}
	}
	t.Fatalf("no row for %s", name)
	return nil
}

func TestPrinterColumns(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	g := testgen.KeyGroup(ns, "devices", testgen.WithPrefix("iot"))
	a := testgen.Application(ns, "acme", "devices", testgen.WithExternalID("70B3D57ED0001234"), func(a *keywardv1alpha1.Application) {
		a.Spec.Type = keywardv1alpha1.ApplicationTypeCustomer
	})
	expires := time.Date(2031, 6, 30, 0, 0, 0, 0, time.UTC)
	k := testgen.APIKey(ns, "acme-dashboard", "acme", testgen.WithScopes("read", "write"), testgen.WithExpiry(expires))
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	// Fill the status the controllers would write, so every column has a value.
	now := metav1.NewTime(time.Now().Add(-30 * time.Minute).Truncate(time.Second))
	k.Status = keywardv1alpha1.APIKeyStatus{Phase: keywardv1alpha1.APIKeyActive, KeyID: "iot_7Hq2", ExpiresAt: k.Spec.ExpiresAt, LastUsedTime: &now}
	if err := env.Client.Status().Update(ctx, k); err != nil {
		t.Fatal(err)
	}
	a.Status = keywardv1alpha1.ApplicationStatus{Phase: keywardv1alpha1.ApplicationActive, ActiveKeys: 1}
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	g.Status = keywardv1alpha1.KeyGroupStatus{Applications: 1, ActiveKeys: 1, VerifyURL: "http://keyward-verifier.keyward-system.svc/v1/verify/" + ns + "/devices"}
	g.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: now}}
	if err := env.Client.Status().Update(ctx, g); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		resource string
		name     string
		columns  []string
		wide     []string
		want     map[string]any
	}{
		{
			resource: "apikeys", name: "acme-dashboard",
			columns: []string{"Name", "Application", "Phase", "Key ID", "Expires", "Last Used", "Age"},
			wide:    []string{"Name", "Application", "Phase", "Key ID", "Expires", "Last Used", "Age", "Scopes"},
			// A date column would print a future expiry as "<invalid>".
			want: map[string]any{"Application": "acme", "Phase": "Active", "Key ID": "iot_7Hq2", "Expires": "2031-06-30T00:00:00Z", "Last Used": "30m", "Scopes": `["read","write"]`},
		},
		{
			resource: "applications", name: "acme",
			columns: []string{"Name", "Key Group", "Type", "Phase", "Keys", "Age"},
			wide:    []string{"Name", "Key Group", "Type", "Phase", "Keys", "External ID", "Age"},
			want:    map[string]any{"Key Group": "devices", "Type": "Customer", "Phase": "Active", "Keys": float64(1), "External ID": "70B3D57ED0001234"},
		},
		{
			resource: "keygroups", name: "devices",
			columns: []string{"Name", "Prefix", "Applications", "Keys", "Ready", "Age"},
			wide:    []string{"Name", "Prefix", "Applications", "Keys", "Ready", "Age", "Verify URL"},
			want:    map[string]any{"Prefix": "iot", "Applications": float64(1), "Keys": float64(1), "Ready": "True", "Verify URL": g.Status.VerifyURL},
		},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			tbl := table(t, tt.resource, ns)
			if got := columnNames(tbl, false); !reflect.DeepEqual(got, tt.columns) {
				t.Errorf("columns: got %q, want %q", got, tt.columns)
			}
			if got := columnNames(tbl, true); !reflect.DeepEqual(got, tt.wide) {
				t.Errorf("wide columns: got %q, want %q", got, tt.wide)
			}
			row := cells(t, tbl, tt.name)
			for col, want := range tt.want {
				got := row[col]
				if col == "Last Used" {
					// A relative age, to the minute from 10m on: "30m" for a
					// minute, however slow the requests.
					if s := fmt.Sprint(got); s != "30m" {
						t.Errorf("%s: got %v, want 30m", col, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %#v, want %#v", col, got, want)
				}
			}
		})
	}

	t.Run("kubectl get apikeys,applications,keygroups -A", func(t *testing.T) {
		out := kubectl(t, "get", "apikeys,applications,keygroups", "-A")
		for _, want := range []string{
			"NAMESPACE", "APPLICATION", "PHASE", "KEY ID", "EXPIRES", "LAST USED",
			"KEY GROUP", "TYPE", "KEYS", "PREFIX", "APPLICATIONS", "READY",
			"apikey.keyward.dev/acme-dashboard", "iot_7Hq2", "Customer", "keygroup.keyward.dev/devices",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("kubectl get keyward (category) and short names", func(t *testing.T) {
		want := "apikey.keyward.dev/acme-dashboard\napplication.keyward.dev/acme\nkeygroup.keyward.dev/devices\n"
		for _, resources := range []string{"keyward", "ak,kwapp,kg"} {
			if out := kubectl(t, "get", resources, "-n", ns, "-o", "name"); out != want {
				t.Errorf("kubectl get %s: got\n%s\nwant\n%s", resources, out, want)
			}
		}
	})
}

// kubectl runs the machine's kubectl against the test control plane.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed for this test: %v", err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
