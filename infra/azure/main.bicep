// ModelPilot on Azure Functions (Flex Consumption, Python 3.11).
//
// Deploy in three steps (Event Grid checks that a subscription's function exists, so subscriptions come last):
//   1. az deployment group create -g <rg> -f infra/azure/main.bicep -p name=<prefix>
//   2. func azure functionapp publish <functionAppName>
//   3. az deployment group create -g <rg> -f infra/azure/main.bicep -p name=<prefix> deploySubscriptions=true
//
// Security posture: managed identity everywhere (no shared keys, no connection strings, no secrets in
// app settings), TLS 1.2, HTTPS only, encryption at rest (infrastructure encryption too), RBAC Key Vault
// with purge protection, least-privilege role assignments scoped to the resources the app uses.
//
// checkov (framework bicep) runs in the tests. Each skipped check is suppressed inside its resource with a
// `// checkov:skip=<id>:<reason>` comment. In short: network lock-down (default-deny firewalls, no public
// endpoints) needs a VNet with private endpoints and Flex Consumption VNet integration, which this template
// leaves to the platform team; until then the data plane accepts only Entra ID tokens checked against RBAC
// (shared keys and local auth are disabled). The rest are App Service checks that do not apply to a Python
// Flex Consumption app (Azure Files, .NET, file logs) or that checkov reads from the auth settings resource.

targetScope = 'resourceGroup'

@description('Short prefix for resource names (3-11 lower-case letters or digits).')
@minLength(3)
@maxLength(11)
param name string

param location string = resourceGroup().location

@description('Storage redundancy of the models/registry account.')
@allowed(['Standard_ZRS', 'Standard_GZRS', 'Standard_RAGZRS', 'Standard_LRS'])
param storageSku string = 'Standard_ZRS'

@description('NCRONTAB schedules of the timers (app settings DRIFT_SCHEDULE, SLO_SCHEDULE and CANARY_SCHEDULE).')
param driftSchedule string = '0 0 * * * *'
param sloSchedule string = '0 */5 * * * *'
param canarySchedule string = '0 */5 * * * *'

@description('MODELPILOT_TRAFFIC_ROUTES: a JSON list of the Azure ML online endpoints a canary\'s split is applied to besides the serving manifest (empty: the manifest only). Name the endpoints in canaryEndpoints too.')
param trafficRoutes string = ''

@description('Online endpoints of the mlWorkspaceId workspace that trafficRoutes names; the app may read them and their deployments and write their traffic (a custom role on each endpoint).')
param canaryEndpoints array = []

@description('Create the Event Grid subscriptions (run after the code is published).')
param deploySubscriptions bool = false

@description('Resource id of an Azure ML workspace whose events ModelPilot handles and whose model versions get its tags written back (empty: none).')
param mlWorkspaceId string = ''

@description('Entra ID app (client) id for App Service authentication of the operator API (empty: keys only).')
param entraClientId string = ''

@description('Run large drift windows as a Durable Functions orchestration (app setting MODELPILOT_AZURE_DURABLE_DRIFT): the drift timer starts one for a window above driftFanOutBytes; the task hub lives in the app storage account.')
param durableDrift bool = false

@description('Planned window size in bytes above which the drift timer fans the window out (MODELPILOT_DRIFT_FANOUT_BYTES; batches of at most this size).')
@minValue(1)
param driftFanOutBytes int = 2147483648

@description('Maximum instances of the Flex Consumption app.')
param maximumInstanceCount int = 40

@description('Resource groups (of this subscription) holding the resources that azure_monitor SLIs read, e.g. the endpoints; the app gets Monitoring Reader on each (Application Insights is always readable).')
param monitoredResourceGroups array = []

@description('Base URL of the Prometheus server that prometheus SLIs read (empty: none).')
param prometheusUrl string = ''

@description('Name of the Key Vault secret with the credentials for prometheusUrl: {"bearer_token": "..."}, {"username": "...", "password": "..."} or a bare token (empty: none).')
param prometheusSecretName string = ''

@description('URL of the MLflow tracking server whose registry webhooks the app receives, whose run metrics the no-regression gates may read (source: mlflow), and to which it writes aliases and tags back (empty: none).')
param mlflowTrackingUri string = ''

@description('Name of the Key Vault secret holding the MLflow webhook signing secret (put the value in the vault: az keyvault secret set --vault-name <vault> -n <name> --value <secret>).')
param mlflowWebhookSecretName string = 'modelpilot-mlflow-webhook'

@description('Name of the Key Vault secret with MLflow credentials, user:password or a token, when the server needs them (empty: none).')
param mlflowTokenSecretName string = ''

@description('An address that receives the operational alerts (dead-lettered events, failing functions); empty: none.')
param alertEmail string = ''

var suffix = uniqueString(resourceGroup().id, name)
var storageName = toLower(take('${name}${suffix}', 24))
var modelsContainer = 'models'
var registryTable = 'modelpilotregistry'
var idempotencyTable = 'modelpilotidempotency'
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// -- storage: model packages, monitoring data, the registry and idempotency tables, dead letters --------
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206:Redundancy is the storageSku parameter (default Standard_ZRS); checkov cannot read a parameter
  // checkov:skip=CKV_AZURE_43:The name is toLower(take(prefix + uniqueString, 24)) from a 3-11 char prefix; checkov cannot evaluate it
  // checkov:skip=CKV_AZURE_35:No VNet in this template; data plane is Entra ID + RBAC only (shared keys off)
  // checkov:skip=CKV_AZURE_59:Event Grid, the Flex Consumption app and operators reach it without a VNet
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: storageSku }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    allowCrossTenantReplication: false
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 14 }
    containerDeleteRetentionPolicy: { enabled: true, days: 14 }
  }
}

resource models 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: modelsContainer
  properties: { publicAccess: 'None' }
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'deadletter'
  properties: { publicAccess: 'None' }
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'deployments'
  properties: { publicAccess: 'None' }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource registry 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: registryTable
}

resource idempotency 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: idempotencyTable
}

// -- observability ------------------------------------------------------------------------------------
resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-appi-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

// -- secrets ------------------------------------------------------------------------------------------
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189:No VNet in this template; access is RBAC-only (Key Vault Secrets User), local auth off
  // checkov:skip=CKV_AZURE_109:No VNet in this template; access is RBAC-only (Key Vault Secrets User)
  name: take('${name}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// -- outbound domain events (CloudEvents 1.0) ---------------------------------------------------------
resource eventsTopic 'Microsoft.EventGrid/topics@2023-12-15-preview' = {
  // checkov:skip=CKV_AZURE_193:The app publishes without a VNet; the topic accepts only Entra ID tokens (local auth disabled)
  name: '${name}-events-${suffix}'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// -- the function app ---------------------------------------------------------------------------------
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy depends on the region; turn it on where the region offers it
  name: '${name}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Event Grid webhook delivery and the operator API need a reachable endpoint without a VNet
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales out on demand from zero; always-ready instances are a cost choice
  // checkov:skip=CKV_AZURE_213:The App Service health check does not apply to Flex Consumption; App Insights monitors instead
  // checkov:skip=CKV_AZURE_17:Callers authenticate with Entra ID and function keys, not client certificates
  name: '${name}-func-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}deployments'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }
        { name: 'MODELPILOT_BACKEND', value: 'azure' }
        { name: 'MODELPILOT_AZURE_STORAGE_ACCOUNT_URL', value: storage.properties.primaryEndpoints.blob }
        { name: 'MODELPILOT_AZURE_TABLE_ENDPOINT', value: storage.properties.primaryEndpoints.table }
        { name: 'MODELPILOT_AZURE_CONTAINER', value: modelsContainer }
        { name: 'MODELPILOT_AZURE_REGISTRY_TABLE', value: registryTable }
        { name: 'MODELPILOT_AZURE_IDEMPOTENCY_TABLE', value: idempotencyTable }
        { name: 'MODELPILOT_AZURE_EVENTGRID_ENDPOINT', value: eventsTopic.properties.endpoint }
        { name: 'MODELPILOT_AZURE_KEYVAULT_URL', value: vault.properties.vaultUri }
        { name: 'MODELPILOT_POLICY', value: 'az://${modelsContainer}/modelpilot.yaml' }
        { name: 'MODELPILOT_SERVING_ROOT', value: 'az://${modelsContainer}/monitoring' }
        { name: 'MODELPILOT_PROMETHEUS_URL', value: prometheusUrl }
        { name: 'MODELPILOT_PROMETHEUS_SECRET', value: prometheusSecretName }
        { name: 'MODELPILOT_AZURE_ML_WORKSPACE_ID', value: mlWorkspaceId }
        { name: 'MODELPILOT_MLFLOW_TRACKING_URI', value: mlflowTrackingUri }
        // the NAME of a secret in this vault, read at run time with the managed identity through KeyVaultSecrets
        // (cached 5 minutes): a Key Vault reference by name, never the value in an app setting
        { name: 'MODELPILOT_MLFLOW_WEBHOOK_SECRET', value: mlflowWebhookSecretName }
        { name: 'MODELPILOT_MLFLOW_TOKEN_SECRET', value: mlflowTokenSecretName }
        { name: 'DRIFT_SCHEDULE', value: driftSchedule }
        { name: 'MODELPILOT_AZURE_DURABLE_DRIFT', value: string(durableDrift) }
        { name: 'MODELPILOT_DRIFT_FANOUT_BYTES', value: string(driftFanOutBytes) }
        { name: 'SLO_SCHEDULE', value: sloSchedule }
        { name: 'CANARY_SCHEDULE', value: canarySchedule }
        { name: 'MODELPILOT_TRAFFIC_ROUTES', value: trafficRoutes }
      ]
    }
  }
}

resource appAuth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(entraClientId)) {
  // checkov:skip=CKV_AZURE_222:Public access is the app's setting (see the app resource); this resource is its auth settings
  // checkov reads this authsettingsV2 block as a web config; these checks concern other config sections:
  // checkov:skip=CKV_AZURE_13:This resource IS the App Service authentication setting (authsettingsV2)
  // checkov:skip=CKV_AZURE_63:HTTP logs go to Application Insights, not App Service file logs
  // checkov:skip=CKV_AZURE_65:Detailed error pages are off; errors are logged to Application Insights
  // checkov:skip=CKV_AZURE_66:Failed request tracing is replaced by Application Insights requests
  // checkov:skip=CKV_AZURE_80:.NET Framework is not used (Python 3.11 on Linux)
  // checkov:skip=CKV_AZURE_88:Flex Consumption has no Azure Files content share
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${subscription().tenantId}/v2.0'
        }
      }
    }
  }
}

// -- least-privilege role assignments for the app's managed identity ----------------------------------
// Blob Data Owner on the account: the Functions host keeps its leases and deployment package there
// (identity-based AzureWebJobsStorage needs Owner); the app itself only reads packages and writes reports.
resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.blobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.queueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.tableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsTopic.id, app.id, roles.eventGridDataSender)
  scope: eventsTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, app.id, roles.monitoringReader)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringReader)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Reader where the SLIs' resources live (azure_monitor SLIs read their metrics): one module per group
module monitoredReaders 'monitoring-reader.bicep' = [for group in monitoredResourceGroups: {
  name: take('modelpilot-reader-${uniqueString(group)}', 64)
  scope: resourceGroup(group)
  params: { principalId: app.identity.principalId }
}]

// Azure ML write-back (policy: azureml): read and write the workspace's model versions, nothing else
var mlWorkspaceParts = split(empty(mlWorkspaceId) ? '/subscriptions/-/resourceGroups/-/providers/-/workspaces/-' : mlWorkspaceId, '/')
module mlTagWriter 'azureml-tag-writer.bicep' = if (!empty(mlWorkspaceId)) {
  name: take('modelpilot-ml-writer-${uniqueString(mlWorkspaceId)}', 64)
  scope: resourceGroup(mlWorkspaceParts[2], mlWorkspaceParts[4])
  params: { principalId: app.identity.principalId, workspaceName: last(mlWorkspaceParts) }
}

// canary traffic routing (router azureml): read the named online endpoints and their deployments, write their traffic
module mlTrafficRouter 'azureml-endpoint-router.bicep' = if (!empty(mlWorkspaceId) && !empty(canaryEndpoints)) {
  name: take('modelpilot-ml-router-${uniqueString(mlWorkspaceId)}', 64)
  scope: resourceGroup(mlWorkspaceParts[2], mlWorkspaceParts[4])
  params: { principalId: app.identity.principalId, workspaceName: last(mlWorkspaceParts), endpointNames: canaryEndpoints }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, app.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- inbound events: blob uploads and Azure ML, with retries and dead-lettering ----------------------
resource storageTopic 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = {
  name: '${name}-storage-events-${suffix}'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource storageTopicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, storageTopic.id, roles.blobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: storageTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

var deliveryPolicy = {
  maxDeliveryAttempts: 30
  eventTimeToLiveInMinutes: 1440
}

resource uploadSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deploySubscriptions) {
  parent: storageTopic
  name: 'model-upload'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/model_upload'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${modelsContainer}/blobs/'
      subjectEndsWith: '/modelpilot.json'
    }
    retryPolicy: deliveryPolicy
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetters.name
        }
      }
    }
  }
  dependsOn: [storageTopicDeadLetter]
}

// the same uploads for the blob trigger model_upload_blob (source EVENT_GRID): Event Grid calls the blobs extension's
// webhook with its system key, which exists once the code is published (hence deploySubscriptions, step 3)
resource uploadBlobSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deploySubscriptions) {
  parent: storageTopic
  name: 'model-upload-blob'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.model_upload_blob&code=${listKeys('${app.id}/host/default', '2023-12-01').systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${modelsContainer}/blobs/'
      subjectEndsWith: '/modelpilot.json'
    }
    retryPolicy: deliveryPolicy
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetters.name
        }
      }
    }
  }
  dependsOn: [storageTopicDeadLetter]
}

// -- model quality: a label file landing under monitoring/feedback/ runs the quality batch of its window ----
// The hourly quality_batch timer needs no resource (its schedule is in the blueprint); the app's managed
// identity already reads and writes the models container (Blob Data Owner above).
resource feedbackSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deploySubscriptions) {
  parent: storageTopic
  name: 'quality-feedback'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/quality_feedback'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${modelsContainer}/blobs/monitoring/feedback/'
    }
    retryPolicy: deliveryPolicy
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetters.name
        }
      }
    }
  }
  dependsOn: [storageTopicDeadLetter]
}

resource mlTopic 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = if (!empty(mlWorkspaceId)) {
  name: '${name}-ml-events-${suffix}'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    source: mlWorkspaceId
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource mlTopicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(mlWorkspaceId)) {
  name: guid(storage.id, '${name}-ml-events', roles.blobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: mlTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource mlRegisteredSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deploySubscriptions && !empty(mlWorkspaceId)) {
  parent: mlTopic
  name: 'azureml-model-registered'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${app.id}/functions/azureml_model_registered', maxEventsPerBatch: 1 }
    }
    filter: { includedEventTypes: ['Microsoft.MachineLearningServices.ModelRegistered'] }
    retryPolicy: deliveryPolicy
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: { resourceId: storage.id, blobContainerName: deadLetters.name }
      }
    }
  }
  dependsOn: [mlTopicDeadLetter]
}

resource mlAlarmSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deploySubscriptions && !empty(mlWorkspaceId)) {
  parent: mlTopic
  name: 'azureml-monitor-alarm'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${app.id}/functions/azureml_monitor_alarm', maxEventsPerBatch: 1 }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.DatasetDriftDetected'
      ]
    }
    retryPolicy: deliveryPolicy
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: { resourceId: storage.id, blobContainerName: deadLetters.name }
      }
    }
  }
  dependsOn: [mlTopicDeadLetter]
}

// -- alerts: Azure Monitor → azure_monitor_alert (rollback), and operational alerts for people -------------
// The action group the generated SLO rules notify (modelpilot slo rules --format azure-monitor): the function
// receives the common alert schema and hands the alert to the rollback policy.
resource alertsActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (deploySubscriptions) {
  name: '${name}-rollback-${suffix}'
  location: 'global'
  properties: {
    groupShortName: take('${name}rb', 12)
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'azure_monitor_alert'
        functionAppResourceId: app.id
        functionName: 'azure_monitor_alert'
        httpTriggerUrl: 'https://${app.properties.defaultHostName}/api/alerts/azure-monitor?code=${listKeys('${app.id}/functions/azure_monitor_alert', '2023-12-01').default}'
        useCommonAlertSchema: true
      }
    ]
  }
}

resource opsActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${name}-ops-${suffix}'
  location: 'global'
  properties: {
    groupShortName: take('${name}ops', 12)
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      { name: 'operators', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

var opsAlerts = [
  {
    name: 'dead-lettered'
    description: 'Events dead-lettered after every retry (the deadletter container); inspect and redeliver them.'
    scope: storageTopic.id
    metricNamespace: 'Microsoft.EventGrid/systemTopics'
    metricName: 'DeadLetteredCount'
    aggregation: 'Total'
  }
  {
    name: 'delivery-dropped'
    description: 'Events Event Grid dropped without dead-lettering them.'
    scope: storageTopic.id
    metricNamespace: 'Microsoft.EventGrid/systemTopics'
    metricName: 'DroppedEventCount'
    aggregation: 'Total'
  }
  {
    name: 'function-failures'
    description: 'Function invocations that failed (each is retried; the last ends in the deadletter container).'
    scope: insights.id
    metricNamespace: 'microsoft.insights/components'
    metricName: 'requests/failed'
    aggregation: 'Count'
  }
]

resource operationalAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [for alert in opsAlerts: {
  name: '${name}-${alert.name}-${suffix}'
  location: 'global'
  properties: {
    description: alert.description
    severity: 2
    enabled: true
    scopes: [alert.scope]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: alert.name
          metricNamespace: alert.metricNamespace
          metricName: alert.metricName
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: alert.aggregation
        }
      ]
    }
    actions: [{ actionGroupId: opsActionGroup.id }]
  }
}]

output functionAppName string = app.name
output storageAccountUrl string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output eventsTopicEndpoint string = eventsTopic.properties.endpoint
output keyVaultUrl string = vault.properties.vaultUri
output logAnalyticsWorkspaceId string = logs.id
output alertsActionGroupId string = deploySubscriptions ? alertsActionGroup.id : ''

