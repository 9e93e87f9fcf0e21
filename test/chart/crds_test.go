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

package chart

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// crdSource is a Go module that publishes, in its module zip, CRDs the
// chart's optional objects are instances of.
type crdSource struct {
	module, version string
	paths           []string // files inside the module
}

// foreignCRDs are the CRDs of the chart's optional objects, with their real
// schemas, so that the dry run checks the objects' fields too.
var foreignCRDs = []crdSource{
	{module: "github.com/cert-manager/cert-manager", version: "v1.21.2", paths: []string{
		"deploy/crds/cert-manager.io_certificates.yaml",
		"deploy/crds/cert-manager.io_issuers.yaml",
	}},
	{module: "github.com/prometheus-operator/prometheus-operator", version: "v0.85.0", paths: []string{
		"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
		"example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
	}},
}

// installForeignCRDs installs foreignCRDs in the control plane (again, if
// they are there). The modules are fetched with `go mod download` in a
// temporary directory, outside keyward's module: go.mod and go.sum stay
// untouched. A module that cannot be fetched fails the test.
func installForeignCRDs(t *testing.T) {
	t.Helper()
	for _, s := range foreignCRDs {
		dir := moduleDir(t, s)
		var paths []string
		for _, p := range s.paths {
			paths = append(paths, filepath.Join(dir, filepath.FromSlash(p)))
		}
		crds, err := envtest.InstallCRDs(cluster.cfg, envtest.CRDInstallOptions{
			Paths: paths, ErrorIfPathMissing: true, MaxTime: 2 * time.Minute,
		})
		if err != nil || len(crds) != len(paths) {
			t.Fatalf("installing %v of %s@%s: %d installed, %v", s.paths, s.module, s.version, len(crds), err)
		}
		t.Logf("%s@%s: installed %v", s.module, s.version, s.paths)
	}
}

// moduleDir downloads s's module (the module proxy, or the module cache)
// and returns the directory it unpacked to.
func moduleDir(t *testing.T, s crdSource) string {
	t.Helper()
	ref := s.module + "@" + s.version
	cmd := exec.Command("go", "mod", "download", "-json", ref)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download %s: %v %s%s", ref, err, m.Error, stderr.String())
	}
	return m.Dir
}
