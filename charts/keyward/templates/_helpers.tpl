{{/*
Names. Every object is named "<fullname>-<what>"; with the release name
"keyward" that gives config/default's names (keyward-manager,
keyward-webhook, ...). The manager's defaults for the names it must know
(internal/cmd/manager.go) are those names: keyward.managerFlags passes a
flag for each one that differs.
*/}}

{{- define "keyward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyward.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keyward.managerName" -}}{{ include "keyward.fullname" . }}-manager{{- end }}
{{- define "keyward.verifierName" -}}{{ include "keyward.fullname" . }}-verifier{{- end }}
{{- define "keyward.webhookServiceName" -}}{{ include "keyward.fullname" . }}-webhook{{- end }}
{{- define "keyward.webhookSecretName" -}}{{ include "keyward.fullname" . }}-webhook-cert{{- end }}
{{- define "keyward.validatingName" -}}{{ include "keyward.fullname" . }}-validating-webhook-configuration{{- end }}
{{- define "keyward.mutatingName" -}}{{ include "keyward.fullname" . }}-mutating-webhook-configuration{{- end }}

{{/*
The verifier Deployments: the release's own ("verifier", every KeyGroup's
keys, or verifier.keyGroups') and one per verifier.shards entry
("verifier-<name>", its keyGroups' keys), as JSON {"items": [...]} of
{name, component, replicas, keyGroups}. Refuses what would make two
sources of one setting disagree or a name Kubernetes refuses.
*/}}
{{- define "keyward.verifiers" -}}
{{- $v := .Values.verifier }}
{{- $name := include "keyward.verifierName" . }}
{{- range $v.extraArgs }}
{{- if and (hasPrefix "--key-groups" (toString .)) (or $v.keyGroups $v.shards) }}
{{- fail "verifier.extraArgs holds --key-groups while verifier.keyGroups or verifier.shards is set: list the release's verifier's KeyGroups in verifier.keyGroups, and take --key-groups out of verifier.extraArgs (every shard gets them too)" }}
{{- end }}
{{- end }}
{{- $items := list (dict "name" $name "component" "verifier" "replicas" $v.replicas "keyGroups" ($v.keyGroups | default list)) }}
{{- $seen := dict }}
{{- range $i, $s := $v.shards }}
{{- if hasKey $seen $s.name }}
{{- fail (printf "verifier.shards[%d].name %q is taken by another shard: give each shard a name of its own" $i $s.name) }}
{{- end }}
{{- if or (eq $s.name "metrics") (hasSuffix "-metrics" $s.name) }}
{{- fail (printf "verifier.shards[%d].name %q would share its Service's name with a verifier's metrics Service (<verifier>-metrics, <verifier>-<shard>-metrics): choose a name other than metrics, not ending in -metrics" $i $s.name) }}
{{- end }}
{{- $_ := set $seen $s.name true }}
{{- $shard := printf "%s-%s" $name $s.name }}
{{- if gt (len (printf "%s-metrics" $shard)) 63 }}
{{- fail (printf "verifier.shards[%d].name %q makes the Service name %s-metrics longer than 63 characters: use a shorter shard name, or fullnameOverride" $i $s.name $shard) }}
{{- end }}
{{- $replicas := $v.replicas }}
{{- if hasKey $s "replicas" }}{{ $replicas = $s.replicas }}{{ end }}
{{- $items = append $items (dict "name" $shard "component" (printf "verifier-%s" $s.name) "replicas" $replicas "keyGroups" $s.keyGroups) }}
{{- end }}
{{- toJson (dict "items" $items) }}
{{- end }}

{{/* The verifier's base URL, as KeyGroup status reports it. */}}
{{- define "keyward.verifierURL" -}}
{{ include "keyward.verifierServiceURL" (list . (include "keyward.verifierName" .)) }}
{{- end }}

{{/* The base URL of a verifier Service. Call with (list $ name). */}}
{{- define "keyward.verifierServiceURL" -}}
{{- $ := index . 0 -}}
http://{{ index . 1 }}.{{ $.Release.Namespace }}.svc
{{- if ne (int $.Values.verifier.service.httpPort) 80 }}:{{ $.Values.verifier.service.httpPort }}{{ end }}
{{- end }}

{{/*
The manager's flags for the names above, each only where it differs from
the manager's default, so that the default install passes the same arguments
as config/default.
*/}}
{{- define "keyward.managerFlags" -}}
{{- $flags := list }}
{{- if ne (include "keyward.webhookServiceName" .) "keyward-webhook" }}
{{- $flags = append $flags (printf "--webhook-service-name=%s" (include "keyward.webhookServiceName" .)) }}
{{- end }}
{{- if ne (include "keyward.webhookSecretName" .) "keyward-webhook-cert" }}
{{- $flags = append $flags (printf "--webhook-cert-secret=%s" (include "keyward.webhookSecretName" .)) }}
{{- end }}
{{- if ne (include "keyward.validatingName" .) "keyward-validating-webhook-configuration" }}
{{- $flags = append $flags (printf "--validating-webhook-configuration=%s" (include "keyward.validatingName" .)) }}
{{- end }}
{{- if ne (include "keyward.mutatingName" .) "keyward-mutating-webhook-configuration" }}
{{- $flags = append $flags (printf "--mutating-webhook-configuration=%s" (include "keyward.mutatingName" .)) }}
{{- end }}
{{- if ne (include "keyward.verifierURL" .) (printf "http://keyward-verifier.%s.svc" .Release.Namespace) }}
{{- $flags = append $flags (printf "--verifier-url=%s" (include "keyward.verifierURL" .)) }}
{{- end }}
{{- toYaml $flags }}
{{- end }}

{{/* Helm's labels, on every object; the selectors never carry them. */}}
{{- define "keyward.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The labels of keyward's objects: app.kubernetes.io/name and Helm's. */}}
{{- define "keyward.labels" -}}
app.kubernetes.io/name: {{ include "keyward.name" . }}
{{ include "keyward.helmLabels" . }}
{{- end }}

{{/* A component's selector labels. Call with (list $ "manager"). */}}
{{- define "keyward.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "keyward.name" $ }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* A component's labels: its selector labels and Helm's. */}}
{{- define "keyward.componentLabels" -}}
{{ include "keyward.selectorLabels" . }}
{{ include "keyward.helmLabels" (index . 0) }}
{{- end }}

{{- define "keyward.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}
{{- end }}

{{/* A ServiceAccount subject in the release's namespace. */}}
{{- define "keyward.subject" -}}
- kind: ServiceAccount
  name: {{ index . 1 }}
  namespace: {{ (index . 0).Release.Namespace }}
{{- end }}

{{/* The scheduling fields of a pod spec, from a component's values. */}}
{{- define "keyward.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/*
A name of config/: "keyward-<what>" becomes "<fullname>-<what>". Call with
(list $ name).
*/}}
{{- define "keyward.rename" -}}
{{- $ := index . 0 }}
{{- $n := index . 1 }}
{{- if hasPrefix "keyward-" $n }}
{{- include "keyward.fullname" $ }}-{{ trimPrefix "keyward-" $n }}
{{- else }}
{{- $n }}
{{- end }}
{{- end }}

{{/*
keyward.fromConfig renders the objects of files/<glob>, copies of config/
kept byte for byte (a test keeps them so), as this release's: names renamed
(keyward.rename), namespaced objects in the release's namespace, RBAC
resourceNames renamed alike, Helm's labels added, and the given annotations.
Call with (dict "root" $ "glob" "files/..." "annotations" (dict ...)).
*/}}
{{- define "keyward.fromConfig" -}}
{{- $ := .root }}
{{- $annotations := default dict .annotations }}
{{- range $path, $_ := $.Files.Glob .glob }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($.Files.Get $path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $path $obj.Error) }}
{{- end }}
{{- if $obj.kind }}
{{- $meta := $obj.metadata }}
{{- $_ := set $meta "name" (include "keyward.rename" (list $ $meta.name)) }}
{{- if $meta.namespace }}
{{- $_ := set $meta "namespace" $.Release.Namespace }}
{{- end }}
{{- $labels := default dict $meta.labels }}
{{- if hasKey $labels "app.kubernetes.io/name" }}
{{- $_ := set $labels "app.kubernetes.io/name" (include "keyward.name" $) }}
{{- end }}
{{- $_ := set $meta "labels" (merge $labels (include "keyward.helmLabels" $ | fromYaml)) }}
{{- if $annotations }}
{{- $_ := set $meta "annotations" (merge (default dict $meta.annotations) $annotations) }}
{{- end }}
{{- range $rule := $obj.rules }}
{{- if $rule.resourceNames }}
{{- $names := list }}
{{- range $rule.resourceNames }}
{{- $names = append $names (include "keyward.rename" (list $ .)) }}
{{- end }}
{{- $_ := set $rule "resourceNames" $names }}
{{- end }}
{{- end }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
