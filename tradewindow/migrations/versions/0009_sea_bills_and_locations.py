"""titles: the kind of a transferable record (railway_bill | sea_bill) and a sea bill's vessel,
voyage and ports; locations: the foreign places on the routes and sea bills (Singapore, Rotterdam,
Hamburg, Almaty, Łódź ...) and Małaszewicze's name with its diacritic

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 19:10:00.000000

Written by hand. Revision 0002 loads the location code list from the CSV as it is when it runs, so
a database created after this change already has the new rows: they are inserted here only where
missing, and the downgrade removes only the codes this revision names.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

NEW_LOCATIONS = ("KZALA", "KZKHO", "PLLDZ", "DEHAM", "NLRTM", "BEANR", "GRPIR", "SGSIN", "MYPKG", "VNHPH",
                 "THLCH", "CNNGB", "CNSZX", "CNWUH")
RENAMED = ("PLMAL",)


def upgrade() -> None:
    from tradewindow.platform.codelists import builtin_entries
    from tradewindow.platform.tables import code_list_entries

    op.add_column('bills_of_lading', sa.Column('kind', sa.String(length=20), server_default='railway_bill',
                                               nullable=False))
    op.add_column('bills_of_lading', sa.Column('vessel', sa.String(length=35), nullable=True))
    op.add_column('bills_of_lading', sa.Column('voyage', sa.String(length=17), nullable=True))
    op.add_column('bills_of_lading', sa.Column('port_of_loading', sa.String(length=5), nullable=True))
    op.add_column('bills_of_lading', sa.Column('port_of_discharge', sa.String(length=5), nullable=True))
    op.create_index('ix_bills_of_lading_kind', 'bills_of_lading', ['kind', 'status'], unique=False)

    conn = op.get_bind()
    locations = {e["code"]: e for e in builtin_entries() if e["list_name"] == "location"}
    present = set(conn.execute(sa.select(code_list_entries.c.code).where(
        code_list_entries.c.list_name == "location")).scalars())
    missing = [locations[code] for code in NEW_LOCATIONS if code not in present]
    if missing:
        op.bulk_insert(code_list_entries, missing)
    for code in RENAMED:
        entry = locations[code]
        conn.execute(sa.update(code_list_entries).where(code_list_entries.c.list_name == "location",
                                                        code_list_entries.c.code == code)
                     .values(name=entry["name"], name_zh=entry["name_zh"]))


def downgrade() -> None:
    from tradewindow.platform.tables import code_list_entries

    op.get_bind().execute(sa.delete(code_list_entries).where(code_list_entries.c.list_name == "location",
                                                             code_list_entries.c.code.in_(NEW_LOCATIONS)))
    op.drop_index('ix_bills_of_lading_kind', table_name='bills_of_lading')
    with op.batch_alter_table('bills_of_lading') as batch:
        for column in ('port_of_discharge', 'port_of_loading', 'voyage', 'vessel', 'kind'):
            batch.drop_column(column)
