{{/*
Expand the name of the chart.
*/}}
{{- define "reportjobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
Component names append at most 9 characters ("-operator"), so the base is cut at 54.
*/}}
{{- define "reportjobs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "reportjobs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels (no component). Usage: include "reportjobs.labels" .
*/}}
{{- define "reportjobs.labels" -}}
helm.sh/chart: {{ include "reportjobs.chart" . }}
app.kubernetes.io/name: {{ include "reportjobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/part-of: reportjobs
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Per-component names, labels and selector labels.
Usage: include "reportjobs.componentLabels" (dict "ctx" $ "component" "gateway")
*/}}
{{- define "reportjobs.componentFullname" -}}
{{- printf "%s-%s" (include "reportjobs.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reportjobs.componentLabels" -}}
{{ include "reportjobs.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "reportjobs.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "reportjobs.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Shorthands for the three components.
*/}}
{{- define "reportjobs.gateway.fullname" -}}
{{- include "reportjobs.componentFullname" (dict "ctx" . "component" "gateway") }}
{{- end }}
{{- define "reportjobs.gateway.labels" -}}
{{- include "reportjobs.componentLabels" (dict "ctx" . "component" "gateway") }}
{{- end }}
{{- define "reportjobs.gateway.selectorLabels" -}}
{{- include "reportjobs.componentSelectorLabels" (dict "ctx" . "component" "gateway") }}
{{- end }}

{{- define "reportjobs.operator.fullname" -}}
{{- include "reportjobs.componentFullname" (dict "ctx" . "component" "operator") }}
{{- end }}
{{- define "reportjobs.operator.labels" -}}
{{- include "reportjobs.componentLabels" (dict "ctx" . "component" "operator") }}
{{- end }}
{{- define "reportjobs.operator.selectorLabels" -}}
{{- include "reportjobs.componentSelectorLabels" (dict "ctx" . "component" "operator") }}
{{- end }}

{{- define "reportjobs.worker.fullname" -}}
{{- include "reportjobs.componentFullname" (dict "ctx" . "component" "worker") }}
{{- end }}
{{- define "reportjobs.worker.labels" -}}
{{- include "reportjobs.componentLabels" (dict "ctx" . "component" "worker") }}
{{- end }}

{{/*
ServiceAccount names. Usage: include "reportjobs.gateway.serviceAccountName" .
*/}}
{{- define "reportjobs.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "reportjobs.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reportjobs.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "reportjobs.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reportjobs.worker.serviceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (include "reportjobs.worker.fullname" .) .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The gateway Service name, and the prefix of the environment variables Kubernetes injects for it
into pods of the namespace (<PREFIX>_SERVICE_HOST, <PREFIX>_SERVICE_PORT).
*/}}
{{- define "reportjobs.gateway.serviceName" -}}
{{- include "reportjobs.gateway.fullname" . }}
{{- end }}
{{- define "reportjobs.gateway.serviceEnvPrefix" -}}
{{- include "reportjobs.gateway.serviceName" . | upper | replace "-" "_" }}
{{- end }}

{{/*
The prefix of the operator's Lease names: <prefix>-shard-NN per shard, <prefix>-member-<pod> per
replica.
*/}}
{{- define "reportjobs.operator.leaseName" -}}
{{- include "reportjobs.operator.fullname" . }}
{{- end }}

{{/*
The image reference shared by all components (tag defaults to the appVersion).
*/}}
{{- define "reportjobs.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Affinity of a component: the user's affinity, plus a soft podAntiAffinity by hostname between the
replicas of the component when spreadAcrossNodes is true and the user set no podAntiAffinity.
Usage: include "reportjobs.affinity" (dict "ctx" $ "component" "gateway" "spread" true)
*/}}
{{- define "reportjobs.affinity" -}}
{{- $affinity := deepCopy (.ctx.Values.affinity | default dict) }}
{{- if and .spread (not (hasKey $affinity "podAntiAffinity")) }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "reportjobs.componentSelectorLabels" . | fromYaml)) }}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) }}
{{- end }}
{{- if $affinity }}
{{- toYaml $affinity }}
{{- end }}
{{- end }}

{{/*
Fail early on values that the JSON schema cannot relate to each other.
*/}}
{{- define "reportjobs.validateValues" -}}
{{- if gt (int64 .Values.job.sleepMinSeconds) (int64 .Values.job.sleepMaxSeconds) }}
{{- fail (printf "job.sleepMinSeconds (%d) must be <= job.sleepMaxSeconds (%d)" (int64 .Values.job.sleepMinSeconds) (int64 .Values.job.sleepMaxSeconds)) }}
{{- end }}
{{- if gt (int64 .Values.job.timeoutSeconds) (int64 .Values.job.maxTimeoutSeconds) }}
{{- fail (printf "job.timeoutSeconds (%d) must be <= job.maxTimeoutSeconds (%d)" (int64 .Values.job.timeoutSeconds) (int64 .Values.job.maxTimeoutSeconds)) }}
{{- end }}
{{- end }}

{{/*
The gateway's dedup window shards (ConfigMaps reportjobs-windows-00..ff, made on first use):
a YAML flow list for RBAC resourceNames. Must match reportjobs_model.window (a unit test checks).
*/}}
{{- define "reportjobs.windowShardNames" -}}
[{{- range $i := until 256 }}{{ if $i }}, {{ end }}{{ printf "reportjobs-windows-%02x" $i | quote }}{{- end }}]
{{- end }}

{{/*
Annotations of a component's pods: the prometheus.io scrape annotations (when
metrics.scrapeAnnotations; both components serve /metrics on port 8080), then the component's
podAnnotations (which win).
Usage: include "reportjobs.podAnnotations" (dict "ctx" $ "annotations" .Values.gateway.podAnnotations)
*/}}
{{- define "reportjobs.podAnnotations" -}}
{{- $annotations := dict }}
{{- if .ctx.Values.metrics.scrapeAnnotations }}
{{- $_ := set $annotations "prometheus.io/scrape" "true" }}
{{- $_ := set $annotations "prometheus.io/port" "8080" }}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" }}
{{- end }}
{{- $annotations = merge (deepCopy (.annotations | default dict)) $annotations }}
{{- if $annotations }}
{{- toYaml $annotations }}
{{- end }}
{{- end }}

{{/*
The Secret holding the webhook signing secret (under the key `secret`).
*/}}
{{- define "reportjobs.webhookSecretName" -}}
{{- .Values.notifications.secretName | default (printf "%s-webhook" (include "reportjobs.fullname" .)) }}
{{- end }}

{{/*
The callback address policy, as env vars (gateway and operator).
*/}}
{{- define "reportjobs.callbackPolicyEnv" -}}
- name: REPORTJOBS_CALLBACK_ALLOWED_CIDRS
  value: {{ .Values.notifications.allowedCIDRs | toJson | quote }}
- name: REPORTJOBS_CALLBACK_ALLOWED_HOSTS
  value: {{ .Values.notifications.allowedHosts | toJson | quote }}
- name: REPORTJOBS_CALLBACK_BLOCKED_CIDRS
  value: {{ .Values.notifications.blockedCIDRs | toJson | quote }}
{{- end }}
