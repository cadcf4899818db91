{{/* Naming, labels and shared pod fragments of the Polyvision chart. */}}

{{- define "polyvision.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; "polyvision" when the release is called polyvision. */}}
{{- define "polyvision.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "polyvision.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "polyvision.selectorLabels" -}}
app.kubernetes.io/name: {{ include "polyvision.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "polyvision.labels" -}}
helm.sh/chart: {{ include "polyvision.chart" . }}
{{ include "polyvision.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: polyvision
{{- end }}

{{- define "polyvision.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "polyvision.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "polyvision.secretName" -}}
{{- if .Values.secret.create }}
{{- printf "%s-secrets" (include "polyvision.fullname" .) }}
{{- else }}
{{- required "secret.existingSecret is required when secret.create is false" .Values.secret.existingSecret }}
{{- end }}
{{- end }}

{{- define "polyvision.configMapName" -}}
{{- printf "%s-config" (include "polyvision.fullname" .) }}
{{- end }}

{{/*
A component's image: (list $ "api"), the second item a key of .Values.images.
*/}}
{{- define "polyvision.image" -}}
{{- $root := index . 0 }}
{{- $name := required (printf "images.%s is not set" (index . 1)) (index $root.Values.images (index . 1)) }}
{{- printf "%s/%s:%s" (trimSuffix "/" $root.Values.image.registry) $name (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- end }}

{{/*
The PV_ settings as a container `env` list, for the hook Jobs: a pre-install hook runs before the
chart's ConfigMap exists, so Jobs get the same values inline instead of through envFrom.
*/}}
{{- define "polyvision.configEnv" -}}
{{- range $key, $value := .Values.config }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Rolls every Deployment when the settings change (envFrom is read only at container start). */}}
{{- define "polyvision.configChecksum" -}}
checksum/config: {{ toYaml .Values.config | sha256sum }}
checksum/secret: {{ printf "%s-%s" (toYaml .Values.secret.values) (include "polyvision.secretName" .) | sha256sum }}
{{- end }}
