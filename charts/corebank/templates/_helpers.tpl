{{/*
Names and labels.
*/}}
{{- define "corebank.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "corebank.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a service's objects: dict "root" $ "name" "account" */}}
{{- define "corebank.componentName" -}}
{{- printf "%s-%s" (include "corebank.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "corebank.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "corebank.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: corebank
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the platform's own pods (any service of this release). */}}
{{- define "corebank.platformSelectorLabels" -}}
app.kubernetes.io/name: {{ include "corebank.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one service: dict "root" $ "name" "account" */}}
{{- define "corebank.selectorLabels" -}}
{{ include "corebank.platformSelectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "corebank.componentLabels" -}}
{{ include "corebank.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "corebank.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Checks that do not fit in values.schema.json; each fails the render with a message naming the value.
*/}}
{{- define "corebank.validate" -}}
{{- $v := .Values -}}
{{- $shardCount := len $v.database.shards -}}
{{- $ranges := $v.database.shardMap.ranges -}}
{{- if $ranges -}}
{{- $next := 0 -}}
{{- range $i, $r := $ranges -}}
{{- $first := index $r 0 | int -}}
{{- $last := index $r 1 | int -}}
{{- $shard := index $r 2 | int -}}
{{- if ne $first $next -}}
{{- fail (printf "database.shardMap.ranges[%d]: starts at bucket %d, expected %d (ranges must be in order and cover buckets 0-1023 without gaps)" $i $first $next) -}}
{{- end -}}
{{- if lt $last $first -}}
{{- fail (printf "database.shardMap.ranges[%d]: last bucket %d is before first bucket %d" $i $last $first) -}}
{{- end -}}
{{- if ge $shard $shardCount -}}
{{- fail (printf "database.shardMap.ranges[%d]: shard %d does not exist (database.shards has %d entries)" $i $shard $shardCount) -}}
{{- end -}}
{{- $next = add1 $last -}}
{{- end -}}
{{- if ne $next 1024 -}}
{{- fail (printf "database.shardMap.ranges: cover buckets 0-%d, expected 0-1023" (sub $next 1)) -}}
{{- end -}}
{{- range $s := until $shardCount -}}
{{- $owns := false -}}
{{- range $ranges -}}{{- if eq (index . 2 | int) $s -}}{{- $owns = true -}}{{- end -}}{{- end -}}
{{- if not $owns -}}
{{- fail (printf "database.shardMap.ranges: shard %d owns no bucket (every shard in database.shards needs at least one range)" $s) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.nats.user (not $v.nats.existingSecret) -}}
{{- fail "nats.existingSecret: required when nats.user is set (the NATS password comes from that Secret)" -}}
{{- end -}}
{{- $sd := $v.shutdown -}}
{{- if le (int $sd.terminationGracePeriodSeconds) (div (add $sd.readinessDrainMs $sd.graceMs) 1000 | int) -}}
{{- fail (printf "shutdown.terminationGracePeriodSeconds: %d must exceed (readinessDrainMs + graceMs) / 1000 = %d, or Kubernetes kills pods mid-drain" (int $sd.terminationGracePeriodSeconds) (div (add $sd.readinessDrainMs $sd.graceMs) 1000 | int)) -}}
{{- end -}}
{{- $enabled := 0 -}}
{{- range $name, $svc := $v.services -}}
{{- if $svc.enabled -}}
{{- $enabled = add1 $enabled -}}
{{- if and $svc.shards (ne (len $svc.shards) $shardCount) -}}
{{- fail (printf "services.%s.shards: has %d entries, database.shards has %d (the shard map is shared; list every shard in the same order)" $name (len $svc.shards) $shardCount) -}}
{{- end -}}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas %d is above maxReplicas %d" $name (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- $reserved := include "corebank.reservedEnv" $ | fromJsonArray -}}
{{- $env := default (dict) $svc.env -}}
{{- $secretEnv := default (dict) $svc.secretEnv -}}
{{- $addresses := list -}}
{{- range $callee := default (list) $svc.calls -}}
{{- if not (hasKey $v.services $callee) -}}
{{- fail (printf "services.%s.calls: %s is not a service of this chart (services has no entry %s)" $name $callee $callee) -}}
{{- end -}}
{{- if eq $callee $name -}}
{{- fail (printf "services.%s.calls: a service does not call itself" $name) -}}
{{- end -}}
{{- $addresses = append $addresses (printf "%s_SERVICE_ADDRESS" (upper $callee)) -}}
{{- end -}}
{{- if has (default "sharded" $svc.storage) (list "global" "sharded+global") -}}
{{- if not $v.database.global -}}
{{- fail (printf "database.global: required by services.%s (storage: %s)" $name $svc.storage) -}}
{{- end -}}
{{- end -}}
{{- if eq (default "sharded" $svc.storage) "global" -}}
{{- if $svc.shards -}}
{{- fail (printf "services.%s.shards: a service with storage: global has no shards (it uses database.global)" $name) -}}
{{- end -}}
{{- end -}}
{{- range $k := concat (keys $env) (keys $secretEnv) -}}
{{- if or (has $k $reserved) (regexMatch "^SHARD_[0-9]+_DATABASE_(URL|PASSWORD)$" $k) -}}
{{- fail (printf "services.%s: %s is set by the chart; use the chart's own value for it" $name $k) -}}
{{- end -}}
{{- if has $k $addresses -}}
{{- fail (printf "services.%s: %s is set by the chart from services.%s.calls; remove it from calls to set it yourself" $name $k $name) -}}
{{- end -}}
{{- if and (hasKey $env $k) (hasKey $secretEnv $k) -}}
{{- fail (printf "services.%s: %s is in both env and secretEnv" $name $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $enabled 0 -}}
{{- fail "services: no service is enabled" -}}
{{- end -}}
{{- if $v.tls.enabled -}}
{{- if has (int $v.tls.healthPort) (list (int $v.grpc.port) (int $v.metrics.port)) -}}
{{- fail (printf "tls.healthPort: %d is already grpc.port or metrics.port; the plaintext health port needs its own" (int $v.tls.healthPort)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Variables the chart sets itself (besides SHARD_i_*). */}}
{{- define "corebank.reservedEnv" -}}
{{- list "SERVICE" "GRPC_HOST" "GRPC_PORT" "METRICS_PORT" "LOG_LEVEL" "SHARD_COUNT" "SHARD_MAP" "DATABASE_POOL_MAX" "DATABASE_PREPARED_STATEMENTS" "GLOBAL_DATABASE_URL" "GLOBAL_DATABASE_PASSWORD" "NATS_URL" "NATS_USER" "NATS_PASSWORD" "AUTH_JWKS" "AUTH_ISSUER" "AUTH_SERVICE_KEY" "SHUTDOWN_GRACE_MS" "READINESS_DRAIN_MS" "GRPC_MAX_CONNECTION_AGE_MS" "ADMISSION_MAX_IN_FLIGHT" "ADMISSION_READ_RESERVE_PERCENT" "ADMISSION_LATENCY_TARGET_MS" "CHANNEL_RATE_LIMITS" "TLS_CERT_FILE" "TLS_KEY_FILE" "TLS_CA_FILE" "TLS_REQUIRED" "TLS_RELOAD_INTERVAL_MS" "GRPC_HEALTH_PORT" "AUDIT_RETENTION_DAYS" "AUDIT_FLUSH_MS" "AUDIT_BATCH_SIZE" "AUDIT_BUFFER_MAX" "OTEL_SERVICE_NAME" "OTEL_EXPORTER_OTLP_ENDPOINT" | toJson -}}
{{- end -}}

{{/* SHARD_MAP value: empty (even split) or the JSON map. */}}
{{- define "corebank.shardMap" -}}
{{- $m := .Values.database.shardMap -}}
{{- if $m.ranges -}}
{{- $ranges := list -}}
{{- range $m.ranges -}}
{{- $ranges = append $ranges (list (index . 0 | int) (index . 1 | int) (index . 2 | int)) -}}
{{- end -}}
{{- dict "version" ($m.version | int) "ranges" $ranges | toJson -}}
{{- end -}}
{{- end -}}

{{/* The TLS Secret of one service: dict "root" $ "name" "account" */}}
{{- define "corebank.tlsSecret" -}}
{{- .root.Values.tls.secretName | replace "{service}" .name -}}
{{- end -}}

{{/* TLS_CA_FILE: tls.caBundle when set, else ca.crt of the service's own TLS Secret. */}}
{{- define "corebank.tlsCaPath" -}}
{{- if .Values.tls.caBundle.existingSecret -}}
/etc/corebank/tls-ca/{{ .Values.tls.caBundle.key }}
{{- else -}}
/etc/corebank/tls/ca.crt
{{- end -}}
{{- end -}}

{{/*
The TLS volumes of one service's pods (dict "root" $ "name" "account"): its Secret as a whole
(no subPath, so that Kubernetes swaps renewed files in atomically and the service re-reads them)
and the CA bundle Secret when there is one. Only the Deployments mount them: the migration Job
reads no certificate.
*/}}
{{- define "corebank.tlsVolumes" -}}
{{- if .root.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "corebank.tlsSecret" . }}
    defaultMode: 0444
{{- with .root.Values.tls.caBundle.existingSecret }}
- name: tls-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
{{- end }}
{{- end }}
{{- end -}}

{{- define "corebank.tlsVolumeMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/corebank/tls
  readOnly: true
{{- if .Values.tls.caBundle.existingSecret }}
- name: tls-ca
  mountPath: /etc/corebank/tls-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Path where database.caBundle is mounted. */}}
{{- define "corebank.dbCaPath" -}}/etc/corebank/db-ca/{{ .Values.database.caBundle.key }}{{- end -}}

{{/*
The environment of one service's container (the Deployment and the migration Job use the same):
dict "root" $ "name" "account" "svc" $svc
A sharded service gets SHARD_COUNT, SHARD_MAP and SHARD_i_DATABASE_URL; a global one (storage:
global) GLOBAL_DATABASE_URL instead; storage: sharded+global gets both. Each service in calls becomes <NAME>_SERVICE_ADDRESS.
Every name here is one the service reads (services/kit/src/config.ts baseSpec and the service's own
spec), or a helper listed in charts/corebank/tests/env-agreement.test.ts.
*/}}
{{- define "corebank.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $svc := .svc -}}
{{- $shards := $v.database.shards -}}
{{- if $svc.shards }}{{ $shards = $svc.shards }}{{ end -}}
- name: SERVICE
  value: {{ .name | quote }}
- name: GRPC_HOST
  value: "0.0.0.0"
- name: GRPC_PORT
  value: {{ $v.grpc.port | quote }}
- name: METRICS_PORT
  value: {{ $v.metrics.port | quote }}
- name: LOG_LEVEL
  value: {{ default $v.logLevel $svc.logLevel | default "info" | quote }}
{{- $storage := default "sharded" $svc.storage }}
{{- if has $storage (list "global" "sharded+global") }}
{{- $g := required (printf "database.global: required by services.%s (storage: %s)" .name $storage) $v.database.global }}
- name: GLOBAL_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $g.existingSecret }}
      key: {{ $g.passwordKey }}
- name: GLOBAL_DATABASE_URL
  {{- $db := $g.database | replace "{service}" $.name }}
  {{- $url := printf "postgres://%s:$(GLOBAL_DATABASE_PASSWORD)@%s:%d/%s?sslmode=%s" $g.user $g.host (int $g.port) $db $g.sslmode }}
  {{- if $v.database.caBundle.existingSecret }}{{ $url = printf "%s&sslrootcert=%s" $url (include "corebank.dbCaPath" $root) }}{{ end }}
  value: {{ $url | quote }}
{{- end }}
{{- if ne $storage "global" }}
- name: SHARD_COUNT
  value: {{ len $shards | quote }}
- name: SHARD_MAP
  value: {{ include "corebank.shardMap" $root | quote }}
{{- range $i, $s := $shards }}
- name: SHARD_{{ $i }}_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.passwordKey }}
- name: SHARD_{{ $i }}_DATABASE_URL
  {{- $db := $s.database | replace "{service}" $.name | replace "{shard}" (toString $i) }}
  {{- $url := printf "postgres://%s:$(SHARD_%d_DATABASE_PASSWORD)@%s:%d/%s?sslmode=%s" $s.user $i $s.host (int $s.port) $db $s.sslmode }}
  {{- if $v.database.caBundle.existingSecret }}{{ $url = printf "%s&sslrootcert=%s" $url (include "corebank.dbCaPath" $root) }}{{ end }}
  value: {{ $url | quote }}
{{- end }}
{{- end }}
- name: DATABASE_POOL_MAX
  value: {{ $v.database.poolMax | quote }}
- name: DATABASE_PREPARED_STATEMENTS
  value: {{ $v.database.preparedStatements | quote }}
- name: NATS_URL
  value: {{ $v.nats.url | quote }}
- name: NATS_USER
  value: {{ $v.nats.user | quote }}
{{- if $v.nats.existingSecret }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.nats.existingSecret }}
      key: {{ $v.nats.passwordKey }}
{{- end }}
- name: AUTH_JWKS
  value: {{ printf "/etc/corebank/auth/%s" $v.auth.jwks.key | quote }}
- name: AUTH_ISSUER
  value: {{ $v.auth.issuer | quote }}
{{- if $svc.calls }}
- name: AUTH_SERVICE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.auth.serviceKeys.existingSecret | replace "{service}" .name }}
      key: {{ $v.auth.serviceKeys.key }}
{{- end }}
- name: SHUTDOWN_GRACE_MS
  value: {{ $v.shutdown.graceMs | quote }}
- name: READINESS_DRAIN_MS
  value: {{ $v.shutdown.readinessDrainMs | quote }}
- name: GRPC_MAX_CONNECTION_AGE_MS
  value: {{ $v.grpc.maxConnectionAgeMs | quote }}
- name: ADMISSION_MAX_IN_FLIGHT
  value: {{ $v.grpc.admission.maxInFlight | quote }}
- name: ADMISSION_READ_RESERVE_PERCENT
  value: {{ $v.grpc.admission.readReservePercent | quote }}
- name: ADMISSION_LATENCY_TARGET_MS
  value: {{ $v.grpc.admission.latencyTargetMs | quote }}
- name: CHANNEL_RATE_LIMITS
  value: {{ $v.grpc.admission.channelRateLimits | quote }}
{{- if $v.tls.enabled }}
- name: TLS_CERT_FILE
  value: "/etc/corebank/tls/tls.crt"
- name: TLS_KEY_FILE
  value: "/etc/corebank/tls/tls.key"
- name: TLS_CA_FILE
  value: {{ include "corebank.tlsCaPath" $root | quote }}
- name: TLS_REQUIRED
  value: "true"
- name: GRPC_HEALTH_PORT
  value: {{ $v.tls.healthPort | quote }}
{{- else }}
- name: TLS_CERT_FILE
  value: ""
- name: TLS_KEY_FILE
  value: ""
- name: TLS_CA_FILE
  value: ""
- name: TLS_REQUIRED
  value: "false"
- name: GRPC_HEALTH_PORT
  value: "0"
{{- end }}
- name: TLS_RELOAD_INTERVAL_MS
  value: {{ $v.tls.reloadIntervalMs | quote }}
- name: AUDIT_RETENTION_DAYS
  value: {{ $v.audit.retentionDays | quote }}
- name: AUDIT_FLUSH_MS
  value: {{ $v.audit.flushMs | quote }}
- name: AUDIT_BATCH_SIZE
  value: {{ $v.audit.batchSize | quote }}
- name: AUDIT_BUFFER_MAX
  value: {{ $v.audit.bufferMax | quote }}
{{- range $callee := default (list) $svc.calls }}
- name: {{ printf "%s_SERVICE_ADDRESS" (upper $callee) }}
  value: {{ printf "%s:%d" (include "corebank.componentName" (dict "root" $root "name" $callee)) (int $v.grpc.port) | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "corebank-%s" .name | quote }}
{{- with $v.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- range $k := keys (default (dict) $svc.env) | sortAlpha }}
- name: {{ $k }}
  value: {{ get $svc.env $k | quote }}
{{- end }}
{{- range $k := keys (default (dict) $svc.secretEnv) | sortAlpha }}
{{- $ref := get $svc.secretEnv $k }}
- name: {{ $k }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName }}
      key: {{ $ref.key }}
{{- end }}
{{- end -}}

{{/* Pod-level security context shared by the services and the migration Job. */}}
{{- define "corebank.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "corebank.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Volumes shared by the services and the migration Job: a writable /tmp, the JWKS (a whole-Secret
mount, no subPath, so that Kubernetes updates the file in place and the services re-read it), the
database CA.
*/}}
{{- define "corebank.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: auth-jwks
  secret:
    secretName: {{ .Values.auth.jwks.existingSecret }}
    defaultMode: 0444
{{- with .Values.database.caBundle.existingSecret }}
- name: db-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
{{- end }}
{{- end -}}

{{- define "corebank.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: auth-jwks
  mountPath: /etc/corebank/auth
  readOnly: true
{{- if .Values.database.caBundle.existingSecret }}
- name: db-ca
  mountPath: /etc/corebank/db-ca
  readOnly: true
{{- end }}
{{- end -}}
