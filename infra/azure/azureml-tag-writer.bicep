// The Azure ML write-back (policy: azureml) for the function app's identity on one workspace (main.bicep's
// mlWorkspaceId): a custom role that may read and write model versions (their tags) and nothing else, assigned
// on the workspace alone.
targetScope = 'resourceGroup'

@description('Object id of the managed identity of the function app.')
param principalId string

@description('Name of the Azure ML workspace (in this resource group).')
param workspaceName string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource tagWriter 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(workspace.id, 'modelpilot-azureml-tag-writer')
  properties: {
    roleName: 'ModelPilot model version tag writer (${resourceGroup().name}/${workspaceName})'
    description: 'Reads and writes Azure ML model versions, to write ModelPilot decisions back as tags.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.MachineLearningServices/workspaces/models/versions/read'
          'Microsoft.MachineLearningServices/workspaces/models/versions/write'
        ]
        notActions: []
      }
    ]
    assignableScopes: [workspace.id]
  }
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, tagWriter.id)
  scope: workspace
  properties: {
    roleDefinitionId: tagWriter.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
