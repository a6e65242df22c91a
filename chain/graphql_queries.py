"""The GraphQL documents ``GraphQLChainReader`` sends, in the field names of Sui's GraphQL schema
(``crates/sui-indexer-alt-graphql/schema.graphql``): ``object``, ``address(...).objects``,
``dynamicField(name: {type, bcs})``, ``dynamicFields``, ``events(filter: {type})``, ``epoch``,
and the ``executeTransaction`` mutation. Move values are read from ``MoveValue.json``.
"""

PAGE_SIZE = 50  # Sui GraphQL's default maximum page size

OBJECT_QUERY = """
query Object($address: SuiAddress!) {
  object(address: $address) {
    address
    version
    digest
    owner { __typename ... on Shared { initialSharedVersion } }
    asMoveObject { contents { type { repr } json } }
  }
}
"""

DYNAMIC_FIELDS_QUERY = """
query DynamicFields($parent: SuiAddress!, $first: Int!, $after: String) {
  address(address: $parent) {
    dynamicFields(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { address value { __typename ... on MoveValue { json } } }
    }
  }
}
"""

EVENTS_QUERY = """
query Events($type: String!, $first: Int!, $after: String) {
  events(first: $first, after: $after, filter: {type: $type}) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { sequenceNumber transaction { digest } contents { json } } }
  }
}
"""

OWNED_OBJECTS_QUERY = """
query OwnedObjects($owner: SuiAddress!, $type: String!, $first: Int!, $after: String, $field: DynamicFieldName!) {
  address(address: $owner) {
    objects(first: $first, after: $after, filter: {type: $type}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        address
        version
        digest
        contents { json }
        dynamicField(name: $field) { value { __typename ... on MoveValue { json } } }
      }
    }
  }
}
"""

KEY_SERVER_QUERY = """
query KeyServer($address: SuiAddress!, $field: DynamicFieldName!) {
  object(address: $address) {
    asMoveObject {
      contents { type { repr } }
      dynamicField(name: $field) { value { __typename ... on MoveValue { json } } }
    }
  }
}
"""

GAS_PRICE_QUERY = """
query GasPrice { epoch { referenceGasPrice } }
"""

EXECUTE_MUTATION = """
mutation Execute($transaction: Base64!, $signatures: [Base64!]!) {
  executeTransaction(transactionDataBcs: $transaction, signatures: $signatures) {
    errors
    effects { digest status executionError { message } }
  }
}
"""
