// Canary traffic routing (MODELPILOT_TRAFFIC_ROUTES, router azureml) for the function app's identity: a custom role
// that may read an online endpoint and its deployments and write the endpoint (its traffic), assigned on each
// routed endpoint alone (main.bicep's canaryEndpoints), never on the whole workspace.
targetScope = 'resourceGroup'

@description('Object id of the managed identity of the function app.')
param principalId string

@description('Name of the Azure ML workspace (in this resource group).')
param workspaceName string

@description('Names of the online endpoints whose traffic the canaries set.')
param endpointNames array

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource endpoints 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-04-01' existing = [for endpoint in endpointNames: {
  parent: workspace
  name: endpoint
}]

resource trafficRouter 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(workspace.id, 'modelpilot-azureml-traffic-router')
  properties: {
    roleName: 'ModelPilot online endpoint traffic router (${resourceGroup().name}/${workspaceName})'
    description: 'Reads Azure ML online endpoints and their deployments and writes an endpoint, to set the traffic of a ModelPilot canary.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [workspace.id]
  }
}

resource router 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (endpoint, i) in endpointNames: {
  name: guid(workspace.id, endpoint, principalId, trafficRouter.id)
  scope: endpoints[i]
  properties: {
    roleDefinitionId: trafficRouter.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
