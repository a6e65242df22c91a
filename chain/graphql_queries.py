"""The GraphQL documents ``GraphQLChainReader`` sends, in the field names of Sui's GraphQL schema
(``crates/sui-indexer-alt-graphql/schema.graphql``): ``object``, ``address(...).objects``,
``dynamicField(name: {type, bcs})``, ``dynamicFields``, ``events(filter: {type})``, ``epoch``,
``transaction``, and the ``executeTransaction`` mutation. Move values are read from ``MoveValue.json``.
``tests/chain/test_wire_conformance.py`` validates every document here against the vendored real schema.
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
query KeyServer($address: SuiAddress!, $v1: DynamicFieldName!, $v2: DynamicFieldName!) {
  object(address: $address) {
    asMoveObject {
      contents { type { repr } }
      v1: dynamicField(name: $v1) { value { __typename ... on MoveValue { json } } }
      v2: dynamicField(name: $v2) { value { __typename ... on MoveValue { json } } }
    }
  }
}
"""

GAS_PRICE_QUERY = """
query GasPrice { epoch { referenceGasPrice } }
"""

CHAIN_IDENTIFIER_QUERY = """
query ChainIdentifier { chainIdentifier }
"""

MAX_CHANGED_OBJECTS = 50  # a metadata transaction changes at most 20 blobs + 20 fields + the gas coin

EXECUTE_MUTATION = """
mutation Execute($transaction: Base64!, $signatures: [Base64!]!) {
  executeTransaction(transactionDataBcs: $transaction, signatures: $signatures) {
    errors
    effects {
      digest
      status
      executionError { message }
      epoch { epochId }
      gasEffects { gasObject { address version digest } }
      objectChanges(first: 50) {
        pageInfo { hasNextPage endCursor }
        nodes {
          address
          idCreated
          outputState { address version digest owner { __typename ... on AddressOwner { address { address } } } }
        }
      }
    }
  }
}
"""

# A transaction is readable once the indexer has it in a checkpoint: until then, ``transaction`` is
# null (not indexed yet) or has no checkpoint (served from execution, not from the index).
TRANSACTION_QUERY = """
query Transaction($digest: String!) {
  transaction(digest: $digest) { digest effects { checkpoint { sequenceNumber } } }
}
"""

# The owner's Blob objects changed after a checkpoint: transactions the owner sent or received objects in
# (``affectedAddress``), each with the objects it left behind. ``checkpoint`` (no argument) is the latest
# checkpoint, the one the whole answer is consistent at: the next call asks for changes after it.
OWNER_CHANGES_QUERY = """
query OwnerChanges($owner: SuiAddress!, $afterCheckpoint: UInt53, $first: Int!, $after: String, $field: DynamicFieldName!) {
  checkpoint { sequenceNumber }
  transactions(first: $first, after: $after, filter: {affectedAddress: $owner, afterCheckpoint: $afterCheckpoint}) {
    pageInfo { hasNextPage endCursor }
    nodes {
      digest
      effects {
        objectChanges(first: 50) {
          pageInfo { hasNextPage }
          nodes {
            address
            outputState {
              address
              version
              owner { __typename ... on AddressOwner { address { address } } }
              asMoveObject {
                contents { type { repr } json }
                dynamicField(name: $field) { value { __typename ... on MoveValue { json } } }
              }
            }
          }
        }
      }
    }
  }
}
"""

LATEST_CHECKPOINT_QUERY = """
query LatestCheckpoint { checkpoint { sequenceNumber } }
"""
