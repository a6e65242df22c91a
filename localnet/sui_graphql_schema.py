"""The subset of Sui's GraphQL schema the localnet serves.

Type and field names are those of ``crates/sui-indexer-alt-graphql/schema.graphql`` in MystenLabs/sui;
only the fields MemWal's readers need are present, with the same argument names and nullability.
``tests/localnet/test_sui_graphql_schema.py`` checks that every type, field and argument here exists in
the vendored real schema with the same type.
"""

SCHEMA_SDL = """
scalar SuiAddress
scalar UInt53
scalar BigInt
scalar Base64
scalar JSON
scalar DateTime

type Query {
  address(address: SuiAddress!): Address!
  object(address: SuiAddress!): Object
  objects(first: Int, after: String, filter: ObjectFilter!): ObjectConnection
  events(first: Int, after: String, filter: EventFilter): EventConnection
  epoch(epochId: UInt53): Epoch
  transaction(digest: String!): Transaction
  transactions(first: Int, after: String, filter: TransactionFilter): TransactionConnection
  checkpoint(sequenceNumber: UInt53): Checkpoint
  chainIdentifier: String!
}

type Mutation {
  executeTransaction(transactionDataBcs: Base64!, signatures: [Base64!]!): ExecutionResult!
}

type Address {
  address: SuiAddress!
  asObject: Object
  objects(first: Int, after: String, filter: ObjectFilter): MoveObjectConnection
  dynamicField(name: DynamicFieldName!): DynamicField
  dynamicFields(first: Int, after: String): DynamicFieldConnection
}

type Object {
  address: SuiAddress!
  version: UInt53
  digest: String
  owner: Owner
  asMoveObject: MoveObject
  asMovePackage: MovePackage
  dynamicField(name: DynamicFieldName!): DynamicField
  dynamicFields(first: Int, after: String): DynamicFieldConnection
}

type MoveObject {
  address: SuiAddress!
  version: UInt53
  digest: String
  owner: Owner
  contents: MoveValue
  hasPublicTransfer: Boolean
  dynamicField(name: DynamicFieldName!): DynamicField
  dynamicFields(first: Int, after: String): DynamicFieldConnection
}

type MovePackage {
  address: SuiAddress!
  version: UInt53
  digest: String
}

type MoveValue {
  type: MoveType
  json: JSON
}

type MoveType {
  repr: String!
}

type DynamicField {
  address: SuiAddress!
  version: UInt53
  digest: String
  name: MoveValue
  value: DynamicFieldValue
}

union DynamicFieldValue = MoveObject | MoveValue

input DynamicFieldName {
  type: String!
  bcs: Base64!
}

input ObjectFilter {
  owner: SuiAddress
  type: String
}

input TransactionFilter {
  affectedAddress: SuiAddress
  afterCheckpoint: UInt53
}

input EventFilter {
  sender: SuiAddress
  module: String
  type: String
}

union Owner = AddressOwner | ObjectOwner | Shared | Immutable

type AddressOwner { address: Address }
type ObjectOwner { address: Address }
type Shared { initialSharedVersion: UInt53 }
type Immutable { _: Boolean }

type Event {
  contents: MoveValue
  sender: Address
  sequenceNumber: UInt53!
  timestamp: DateTime
  transaction: Transaction
}

type Transaction {
  digest: String!
  effects: TransactionEffects
}

type Checkpoint {
  sequenceNumber: UInt53!
}

type Epoch {
  epochId: UInt53!
  referenceGasPrice: BigInt
}

type ExecutionResult {
  effects: TransactionEffects
  errors: [String!]
}

type TransactionEffects {
  digest: String!
  status: ExecutionStatus
  executionError: ExecutionError
  checkpoint: Checkpoint
  epoch: Epoch
  gasEffects: GasEffects
  objectChanges(first: Int, after: String): ObjectChangeConnection
}

type GasEffects {
  gasObject: Object
}

type ObjectChange {
  address: SuiAddress!
  idCreated: Boolean
  idDeleted: Boolean
  inputState: Object
  outputState: Object
}

enum ExecutionStatus { SUCCESS FAILURE }

type ExecutionError {
  message: String!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type ObjectConnection { pageInfo: PageInfo! edges: [ObjectEdge!]! nodes: [Object!]! }
type ObjectEdge { cursor: String! node: Object! }
type MoveObjectConnection { pageInfo: PageInfo! edges: [MoveObjectEdge!]! nodes: [MoveObject!]! }
type MoveObjectEdge { cursor: String! node: MoveObject! }
type DynamicFieldConnection { pageInfo: PageInfo! edges: [DynamicFieldEdge!]! nodes: [DynamicField!]! }
type DynamicFieldEdge { cursor: String! node: DynamicField! }
type EventConnection { pageInfo: PageInfo! edges: [EventEdge!]! nodes: [Event!]! }
type ObjectChangeConnection { pageInfo: PageInfo! edges: [ObjectChangeEdge!]! nodes: [ObjectChange!]! }
type ObjectChangeEdge { cursor: String! node: ObjectChange! }
type EventEdge { cursor: String! node: Event! }
type TransactionConnection { pageInfo: PageInfo! edges: [TransactionEdge!]! nodes: [Transaction!]! }
type TransactionEdge { cursor: String! node: Transaction! }

schema { query: Query mutation: Mutation }
"""
