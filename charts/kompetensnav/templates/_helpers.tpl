{{/* Names. */}}
{{- define "kn.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of everything; kn.commonLabels goes with a kn.selector. */}}
{{- define "kn.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kompetensnav
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "kn.labels" -}}
{{ include "kn.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "councils"). */}}
{{- define "kn.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "kn.secretName" -}}
{{- default (printf "%s-secrets" (include "kn.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "kn.redisHeadless" -}}
{{- printf "%s-redis-headless" (include "kn.fullname" .) -}}
{{- end -}}

{{- define "kn.sentinelHeadless" -}}
{{- printf "%s-redis-sentinel-headless" (include "kn.fullname" .) -}}
{{- end -}}

{{/* The chart's Redis as {addrs, masterName}, JSON. */}}
{{- define "kn.redis" -}}
{{- $r := .Values.redis -}}
{{- if eq $r.mode "external" -}}
{{- dict "addrs" $r.external.addrs "masterName" $r.external.masterName | toJson -}}
{{- else if $r.internal.sentinel.enabled -}}
{{- $fn := include "kn.fullname" . -}}
{{- $hl := include "kn.sentinelHeadless" . -}}
{{- $addrs := list -}}
{{- range $i := until (int $r.internal.sentinel.replicas) -}}
{{- $addrs = append $addrs (printf "%s-redis-sentinel-%d.%s:26379" $fn $i $hl) -}}
{{- end -}}
{{- dict "addrs" (join "," $addrs) "masterName" $r.internal.sentinel.masterName | toJson -}}
{{- else -}}
{{- dict "addrs" (printf "%s-redis-0.%s:6379" (include "kn.fullname" .) (include "kn.redisHeadless" .)) "masterName" "" | toJson -}}
{{- end -}}
{{- end -}}

{{/* A service's Redis as {addrs, masterName}, JSON: its own, else the chart's. (dict "root" $ "svc" $svc) */}}
{{- define "kn.serviceRedis" -}}
{{- $own := .svc.redis | default dict -}}
{{- if $own.addrs -}}
{{- dict "addrs" $own.addrs "masterName" ($own.masterName | default "") | toJson -}}
{{- else -}}
{{- include "kn.redis" .root -}}
{{- end -}}
{{- end -}}

{{/* KN_<NAME> from a flag-like name: "page-token" -> KN_PAGE_TOKEN. */}}
{{- define "kn.env" -}}
{{- printf "KN_%s" (. | upper | replace "-" "_") -}}
{{- end -}}

{{- define "kn.image" -}}
{{- $img := .block.image | default dict -}}
{{- $reg := $img.registry | default .root.Values.image.registry -}}
{{- $repo := $img.repository | default (printf "%s/%s" .root.Values.image.repository .binary) -}}
{{- $tag := $img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if $reg -}}{{ printf "%s/%s:%s" $reg $repo $tag }}{{- else -}}{{ printf "%s:%s" $repo $tag }}{{- end -}}
{{- end -}}

{{- define "kn.terminationGrace" -}}
{{- add .Values.common.preStopSleepSeconds .Values.common.drainDelaySeconds .Values.common.shutdownGraceSeconds 5 -}}
{{- end -}}
