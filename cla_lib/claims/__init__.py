"""From scores to claims: paired intervals over questions and seeds (`intervals`), runs compared (`comparison`),
representation analyses (`analysis`), the testbed's properties (`testbed`), the stated rules that word every verdict
(`verdicts`), the figures (`plots`), and each chapter's tables and words (`plane_study`, `erasure`,
`dissociation`, `balance`)."""
