"""The GraphQL schema: types, resolvers, context and error handling."""
